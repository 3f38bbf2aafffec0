#include "buffer_pool.h"

#include <uv.h>

#include <cstdlib>
#include <new>
#include <vector>

namespace rpctls {
namespace {

// Block sizes are rounded up to this, so that records of about the same size reuse each other's blocks.
constexpr size_t kBlockGranule = 16 * 1024;
// The block's capacity sits in front of the bytes handed out (16 bytes keep them 16-byte aligned).
constexpr size_t kHeader = 16;
// What the pool may keep. The GC frees Buffers in batches, and V8 lets external memory grow by 64 MiB
// before it collects for that reason alone: at 1 MiB records a batch is tens of MiB, and a pool smaller
// than a batch sends the rest back to malloc, whose trim hands it to the kernel, to be faulted in again
// (TLS ECHO at 1 MiB against node:tls, Node 24: 16 MiB no better than no pool, 32 MiB half the gain of
// 64 MiB). Spare memory is memory the process held a moment earlier; the pool only delays its return.
constexpr size_t kMaxPooledBytes = 64u << 20;
// Spare blocks go back to malloc once a sweep finds the pool unused since the last one: a process that
// moved large records once does not keep the memory.
constexpr uint64_t kSweepMs = 2000;

struct BlockPool {
  std::vector<uint8_t*> spare;  // blocks (header first), each of BlockCapacity bytes after the header
  size_t pooledBytes = 0;
  double taken = 0;
  double reused = 0;
  bool usedSinceSweep = false;
  bool sweeping = false;
  uv_timer_t sweep;
  // The environment's teardown waits for the timer to close (a worker's loop must have no handle left).
  napi_async_cleanup_hook_handle cleanup = nullptr;
};

// One pool per thread (each worker runs its own environment); finalizers run on that thread too.
thread_local BlockPool* pool = nullptr;
// Set once the environment tore its pool down: blocks collected after that go straight to free().
thread_local bool poolClosed = false;

size_t& CapacityOf(uint8_t* block) { return *reinterpret_cast<size_t*>(block); }

void FreeSpare(BlockPool* p) {
  for (uint8_t* block : p->spare) free(block);
  p->spare.clear();
  p->pooledBytes = 0;
}

void OnSweep(uv_timer_t* timer) {
  BlockPool* p = static_cast<BlockPool*>(timer->data);
  if (!p->usedSinceSweep) {
    FreeSpare(p);
    uv_timer_stop(timer);
    p->sweeping = false;
  }
  p->usedSinceSweep = false;
}

void OnSweepClosed(uv_handle_t* handle) {
  BlockPool* p = static_cast<BlockPool*>(handle->data);
  napi_remove_async_cleanup_hook(p->cleanup);
  delete p;
}

void ClosePool(napi_async_cleanup_hook_handle, void* data) {
  BlockPool* p = static_cast<BlockPool*>(data);
  pool = nullptr;
  poolClosed = true;
  FreeSpare(p);
  uv_close(reinterpret_cast<uv_handle_t*>(&p->sweep), OnSweepClosed);
}

BlockPool* PoolFor(Napi::Env env) {
  if (pool != nullptr || poolClosed) return pool;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return nullptr;
  auto* p = new BlockPool();
  uv_timer_init(loop, &p->sweep);
  p->sweep.data = p;
  // The sweep never keeps the process alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(&p->sweep));
  if (napi_add_async_cleanup_hook(env, ClosePool, p, &p->cleanup) != napi_ok) {
    uv_close(reinterpret_cast<uv_handle_t*>(&p->sweep), [](uv_handle_t* handle) { delete static_cast<BlockPool*>(handle->data); });
    return nullptr;
  }
  pool = p;
  return p;
}

void ReturnBlock(uint8_t* block) {
  BlockPool* p = pool;
  size_t capacity = CapacityOf(block);
  if (p == nullptr || p->pooledBytes + capacity > kMaxPooledBytes) {
    free(block);
    return;
  }
  p->spare.push_back(block);
  p->pooledBytes += capacity;
  if (!p->sweeping) {
    p->sweeping = true;
    p->usedSinceSweep = true;
    uv_timer_start(&p->sweep, OnSweep, kSweepMs, kSweepMs);
  }
}

void ReleaseData(Napi::Env, uint8_t* data) { ReturnBlock(data - kHeader); }

}  // namespace

uint8_t* TakeBlock(Napi::Env env, size_t size) {
  size_t capacity = (size + kBlockGranule - 1) / kBlockGranule * kBlockGranule;
  BlockPool* p = PoolFor(env);
  if (p != nullptr) {
    p->taken++;
    p->usedSinceSweep = true;
    // Best fit among blocks at most twice the size: a small read never pins a record-sized block.
    size_t best = p->spare.size();
    for (size_t i = 0; i < p->spare.size(); i++) {
      size_t c = CapacityOf(p->spare[i]);
      if (c >= capacity && c <= 2 * capacity && (best == p->spare.size() || c < CapacityOf(p->spare[best]))) {
        best = i;
        if (c == capacity) break;
      }
    }
    if (best != p->spare.size()) {
      uint8_t* block = p->spare[best];
      p->spare[best] = p->spare.back();
      p->spare.pop_back();
      p->pooledBytes -= CapacityOf(block);
      p->reused++;
      return block + kHeader;
    }
  }
  auto* block = static_cast<uint8_t*>(malloc(kHeader + capacity));
  if (block == nullptr) throw std::bad_alloc();
  CapacityOf(block) = capacity;
  return block + kHeader;
}

Napi::Buffer<uint8_t> BlockBuffer(Napi::Env env, uint8_t* data, size_t length) {
  return Napi::Buffer<uint8_t>::New(env, data, length, ReleaseData);
}

Napi::Value BlockPoolStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  BlockPool* p = pool;
  out.Set("pooledBytes", Napi::Number::New(env, p ? static_cast<double>(p->pooledBytes) : 0));
  out.Set("pooledBlocks", Napi::Number::New(env, p ? static_cast<double>(p->spare.size()) : 0));
  out.Set("taken", Napi::Number::New(env, p ? p->taken : 0));
  out.Set("reused", Napi::Number::New(env, p ? p->reused : 0));
  return out;
}

Napi::Value PooledBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "pooledBuffer(size): size must be a number");
  double size = info[0].As<Napi::Number>().DoubleValue();
  if (!(size >= 1 && size <= 0x7fffffff) || size != static_cast<double>(static_cast<size_t>(size))) {
    throw Napi::RangeError::New(env, "pooledBuffer(size): size must be an integer from 1 to 2^31-1");
  }
  return BlockBuffer(env, TakeBlock(env, static_cast<size_t>(size)), static_cast<size_t>(size));
}

}  // namespace rpctls
