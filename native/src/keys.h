#pragma once

#include <napi.h>

namespace rpctls {

// Adds `keys` (read, describe, link, unlink, search, add: kernel keyrings) to the addon's exports.
void InitKeys(Napi::Env env, Napi::Object exports);

}  // namespace rpctls
