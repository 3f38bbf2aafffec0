// Memory for large Buffers (TLS reads, reassembled records) that goes back to a small per-thread pool
// when the GC frees the Buffer, instead of back to malloc: on machines where a page fault is expensive
// (VMs), memory that glibc returned to the kernel and takes back costs more than the copy into it.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace rpctls {

// A block of at least `size` bytes (rounded up to kBlockGranule) for `env`'s thread, from the pool when
// one of a fitting size is spare. Throws std::bad_alloc when memory runs out.
uint8_t* TakeBlock(Napi::Env env, size_t size);

// Hands `length` bytes of a block from TakeBlock to JS; the block returns to the pool when the Buffer
// is collected. The bytes are not cleared: the caller fills all `length` of them first.
Napi::Buffer<uint8_t> BlockBuffer(Napi::Env env, uint8_t* block, size_t length);

// { pooledBytes, pooledBlocks, taken, reused }: for tests and diagnostics.
Napi::Value BlockPoolStats(const Napi::CallbackInfo& info);

// pooledBuffer(size): a Buffer of `size` uninitialized bytes from the pool (the caller overwrites them).
Napi::Value PooledBuffer(const Napi::CallbackInfo& info);

}  // namespace rpctls
