#pragma once

#include <napi.h>

#include <vector>

namespace rpctls {

#ifdef __linux__
// keyctl(KEYCTL_SEARCH) from a keyring (-3: the session keyring): the serial, or -1 (errno set).
long SearchKey(int keyring, const char* type, const char* description);
// The payload of a key, into `out` (wiped by the caller); false with *err on failure.
bool ReadKeyPayload(int serial, std::vector<unsigned char>* out, int* err);
#endif

// Adds `keys` (read, describe, link, unlink, search, add: kernel keyrings) to the addon's exports.
void InitKeys(Napi::Env env, Napi::Object exports);

}  // namespace rpctls
