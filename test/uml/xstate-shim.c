// LD_PRELOAD shim for Debian bookworm's linux.uml (6.1) on hosts whose XSAVE area is larger than the
// 832 bytes (x87/SSE + AVX) UML 6.1 was written for, e.g. CPUs with AVX-512 or AMX.
//
// Why: UML saves and restores the FP state of its guest threads with PTRACE_GETREGSET/SETREGSET
// NT_X86_XSTATE and a fixed 832-byte buffer. The host kernel truncates a short GET, but refuses a SET
// whose length is not its full XSAVE size (EFAULT), so the guest's init dies with SIGSEGV at boot
// ("Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b"). Newer UML kernels size
// the buffer from the host; this shim does the same from outside.
//
// How: a short GET fetches the full state, keeps it keyed by UML's buffer address (one buffer per guest
// thread), and returns the prefix UML asked for. A short SET lays UML's prefix over the full state kept
// for that buffer (or the thread's current state) and sets the full size. So AVX-512/AMX registers
// survive a switch between guest threads too, instead of leaking from one thread into another.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

typedef long (*ptrace_fn)(enum __ptrace_request, pid_t, void *, void *);

static ptrace_fn real_ptrace;
static size_t full_size; // the host's XSAVE size as ptrace reports it; 0 until known
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

// Saved full states, keyed by UML's buffer address. Small open-addressing table; UML has few threads.
#define SLOTS 4096
static struct {
  void *key;
  unsigned char *state;
} slots[SLOTS];

static unsigned char *slot_for(void *key, int create) {
  size_t h = ((size_t)key >> 4) % SLOTS;
  for (size_t i = 0; i < SLOTS; i++) {
    size_t at = (h + i) % SLOTS;
    if (slots[at].key == key) return slots[at].state;
    if (slots[at].key == NULL) {
      if (!create) return NULL;
      unsigned char *state = malloc(full_size);
      if (state == NULL) return NULL;
      slots[at].key = key;
      slots[at].state = state;
      return state;
    }
  }
  return NULL; // full: fall back to the thread's current state
}

static long get_full(pid_t pid, unsigned char *into) {
  struct iovec iov = {into, full_size};
  return real_ptrace(PTRACE_GETREGSET, pid, (void *)(long)NT_X86_XSTATE, &iov);
}

// Learns the host's XSAVE size from one GET with a buffer larger than any XSAVE area.
static int learn_size(pid_t pid) {
  static unsigned char probe[1 << 16];
  struct iovec iov = {probe, sizeof(probe)};
  if (real_ptrace(PTRACE_GETREGSET, pid, (void *)(long)NT_X86_XSTATE, &iov) < 0) return -1;
  full_size = iov.iov_len;
  return 0;
}

static long short_regset(enum __ptrace_request request, pid_t pid, struct iovec *iov) {
  pthread_mutex_lock(&lock);
  long result = -1;
  int saved_errno = 0;
  if (full_size == 0 && learn_size(pid) < 0) {
    saved_errno = errno;
    goto out;
  }
  if (iov->iov_len >= full_size) {
    result = real_ptrace(request, pid, (void *)(long)NT_X86_XSTATE, iov);
    saved_errno = errno;
    goto out;
  }
  unsigned char *state = slot_for(iov->iov_base, request == PTRACE_GETREGSET);
  // Static, not on the stack: UML calls ptrace on its own small kernel stacks. Guarded by `lock`.
  static unsigned char scratch_static[1 << 16];
  unsigned char *scratch = full_size <= sizeof(scratch_static) ? scratch_static : NULL;
  if (state == NULL) state = scratch;
  if (state == NULL) {
    saved_errno = ENOMEM;
    goto out;
  }
  if (request == PTRACE_GETREGSET) {
    result = get_full(pid, state);
    saved_errno = errno;
    if (result == 0) memcpy(iov->iov_base, state, iov->iov_len);
  } else {
    // Without a saved state for this buffer, start from the thread's current registers.
    if (state == scratch || slot_for(iov->iov_base, 0) == NULL) {
      if (get_full(pid, state) < 0) {
        saved_errno = errno;
        goto out;
      }
    }
    memcpy(state, iov->iov_base, iov->iov_len);
    struct iovec full = {state, full_size};
    result = real_ptrace(PTRACE_SETREGSET, pid, (void *)(long)NT_X86_XSTATE, &full);
    saved_errno = errno;
  }
out:
  pthread_mutex_unlock(&lock);
  errno = saved_errno;
  return result;
}

long ptrace(enum __ptrace_request request, ...) {
  va_list ap;
  va_start(ap, request);
  pid_t pid = va_arg(ap, pid_t);
  void *addr = va_arg(ap, void *);
  void *data = va_arg(ap, void *);
  va_end(ap);
  if (real_ptrace == NULL) real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
  if ((request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) && (long)addr == NT_X86_XSTATE && data != NULL) {
    return short_regset(request, pid, (struct iovec *)data);
  }
  return real_ptrace(request, pid, addr, data);
}
