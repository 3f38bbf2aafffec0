/*
 * LD_PRELOAD shim for Debian's linux.uml (bookworm's 6.1 for test/uml/run.sh, trixie's 6.12 for the
 * interop harness) on hosts whose XSAVE area is larger than UML's compile-time FP buffer (832 bytes in
 * 6.1, 2696 in 6.12), i.e. AVX-512 or AMX hosts. UML saves and restores a guest thread's FPU state with
 * PTRACE_GETREGSET/SETREGSET(NT_X86_XSTATE) using that fixed size; the host kernel accepts a short
 * GETREGSET but fails a short SETREGSET with EFAULT, so the guest's init dies at once ("Kernel panic -
 * not syncing: Attempted to kill init! exitcode=0x0000000b" on 6.1, "userspace - ptrace set fp regs
 * failed, errno = 14" on 6.12; fixed upstream by "um: switch to regset API and depend on XSTATE").
 *
 * The shim keeps, per UML FP buffer (one per guest thread), a shadow of the host's full XSAVE image:
 * a short GETREGSET reads the full image into the shadow and hands UML its first bytes; a short
 * SETREGSET lays UML's bytes over the shadow and sets the full image. So AVX-512 and later state is
 * kept per guest thread too, and UML's own view is unchanged. Static buffers only: UML calls ptrace on
 * its own small kernel stacks. It passes everything through where the sizes already match.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <stdio.h>
#include <unistd.h>

#define REQ_GETREGSET 0x4204
#define REQ_SETREGSET 0x4205
#define NOTE_X86_XSTATE 0x202
#define MAX_XSTATE (64 * 1024)
#define SLOTS 16384

typedef long (*ptrace_fn)(int, pid_t, void *, void *);
static ptrace_fn real_ptrace;
static size_t full_size; /* the host's NT_X86_XSTATE regset size, learnt on first use */
static struct { void *key; unsigned char *state; } slots[SLOTS];
static unsigned char scratch[MAX_XSTATE] __attribute__((aligned(64)));

static unsigned char *shadow(void *key, int *fresh) {
  *fresh = 0;
  size_t i = ((uintptr_t)key >> 4) % SLOTS;
  for (size_t n = 0; n < SLOTS; n++, i = (i + 1) % SLOTS) {
    if (slots[i].key == key) return slots[i].state;
    if (slots[i].key == NULL) {
      unsigned char *state = aligned_alloc(64, (full_size + 63) & ~(size_t)63);
      if (state == NULL) return NULL;
      slots[i].key = key;
      slots[i].state = state;
      *fresh = 1;
      return state;
    }
  }
  return NULL; /* table full: callers fall back to the scratch buffer */
}

static int learn_size(pid_t pid, void *addr, size_t uml_size) {
  if (full_size != 0) return 0;
  struct iovec probe = {scratch, sizeof(scratch)};
  if (real_ptrace(REQ_GETREGSET, pid, addr, &probe) != 0) return -1;
  full_size = probe.iov_len;
  char line[128];
  int n = snprintf(line, sizeof(line), "uml-xstate: UML's XSAVE buffer %zu bytes, host regset %zu bytes%s\n", uml_size,
                   full_size, uml_size < full_size ? ": shadowing" : ": passing through");
  if (n > 0) (void)!write(2, line, (size_t)n);
  return 0;
}

long ptrace(int request, ...) {
  va_list ap;
  va_start(ap, request);
  pid_t pid = va_arg(ap, pid_t);
  void *addr = va_arg(ap, void *);
  void *data = va_arg(ap, void *);
  va_end(ap);
  if (real_ptrace == NULL) real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");

  if ((request == REQ_GETREGSET || request == REQ_SETREGSET) && (uintptr_t)addr == NOTE_X86_XSTATE && data != NULL) {
    struct iovec *iov = data;
    if (learn_size(pid, addr, iov->iov_len) == 0 && iov->iov_len < full_size) {
      int fresh = 0;
      unsigned char *state = shadow(iov->iov_base, &fresh);
      if (state == NULL) state = scratch, fresh = 1;
      struct iovec full = {state, full_size};
      if (request == REQ_GETREGSET) {
        long r = real_ptrace(REQ_GETREGSET, pid, addr, &full);
        if (r != 0) return r;
        size_t n = iov->iov_len < full.iov_len ? iov->iov_len : full.iov_len;
        memcpy(iov->iov_base, state, n);
        iov->iov_len = n;
        return 0;
      }
      if (fresh) { /* no image of this thread yet: start from its current extended state */
        long r = real_ptrace(REQ_GETREGSET, pid, addr, &full);
        if (r != 0) return r;
      }
      memcpy(state, iov->iov_base, iov->iov_len);
      full.iov_len = full_size;
      return real_ptrace(REQ_SETREGSET, pid, addr, &full);
    }
  }
  return real_ptrace(request, pid, addr, data);
}
