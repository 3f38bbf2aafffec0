/*
 * rpctls benchmark peer: a libtirpc TCP client that times NULL or ECHO calls from C, one call at a time
 * per thread, each thread on its own connection. Drives either server: the libtirpc BULK server
 * (program 0x20000777 v1) or `rpctls serve` (test program 0x20000001 v1); in both, procedure 0 is NULL and
 * procedure 1 is ECHO opaque<> -> the same opaque. Built by build.sh next to bulk_server; driven by
 * bench/libtirpc.ts.
 *
 *   bulk_tcp_client <port> <program> <version> null <threads> <milliseconds>
 *   bulk_tcp_client <port> <program> <version> echo <threads> <milliseconds> <bytes>
 *
 * Every thread connects to 127.0.0.1:<port> (TCP_NODELAY; no rpcbind) and makes its CLIENT with
 * clnt_vc_create, then all start together behind a barrier and call until the deadline (CLOCK_MONOTONIC).
 * ECHO buffers are allocated once per thread: the argument is encoded from one buffer, the reply decoded
 * into another (xdr_echo_reply below: no malloc per call), checked for length and for its first and last
 * bytes, which change every call.
 *
 * Prints `calls=<n> seconds=<s> bytes=<ECHO argument bytes sent>` and exits 0; on any RPC failure prints
 * clnt_sperror to stderr and exits 1 (2: usage).
 *
 * BULK_TCP_BUFSZ (environment, bytes; default 0 = libtirpc's 64 KiB, which it clamps to 256 KiB) sets the
 * clnt_vc_create send/receive buffer sizes: the record fragment size and the read size. 1 MiB ECHO was no
 * clearly faster with 256 KiB (within run-to-run noise, 1 and 4 threads), so the default is kept.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rpc/rpc.h>

#include "bulk.h"

#define NULLPROC_NUM 0
#define ECHOPROC_NUM 1

static unsigned short port;
static rpcprog_t program;
static rpcvers_t version;
static int echo_mode;
static u_int echo_bytes;
static u_int bufsz;
static struct timespec deadline;
static pthread_barrier_t ready, go;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

/* The first failure prints and ends the process; later ones wait on the lock until it is gone. */
static void fail(const char *what, CLIENT *clnt) {
  pthread_mutex_lock(&fail_lock);
  if (clnt != NULL) fprintf(stderr, "%s\n", clnt_sperror(clnt, what));
  else fprintf(stderr, "bulk_tcp_client: %s: %s\n", what, strerror(errno));
  _exit(1);
}

/* The ECHO reply decoded into a caller-owned buffer: a longer reply is a decode error, never a malloc. */
struct echo_reply {
  char *buf;
  u_int cap;
  u_int len;
};

static bool_t xdr_echo_reply(XDR *xdrs, struct echo_reply *r) {
  if (!xdr_u_int(xdrs, &r->len)) return FALSE;
  if (r->len > r->cap) return FALSE;
  return xdr_opaque(xdrs, r->buf, r->len);
}

static int before_deadline(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec < deadline.tv_sec || (now.tv_sec == deadline.tv_sec && now.tv_nsec < deadline.tv_nsec);
}

struct worker {
  pthread_t thread;
  long calls;
};

static void *run(void *arg) {
  struct worker *w = arg;
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons(port);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket", NULL);
  if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) fail("connect", NULL);
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) fail("setsockopt TCP_NODELAY", NULL);
  struct netbuf addr = {.maxlen = sizeof sin, .len = sizeof sin, .buf = &sin};
  CLIENT *clnt = clnt_vc_create(fd, &addr, program, version, bufsz, bufsz);
  if (clnt == NULL) {
    pthread_mutex_lock(&fail_lock);
    fprintf(stderr, "%s\n", clnt_spcreateerror("clnt_vc_create"));
    _exit(1);
  }
  struct timeval timeout = {30, 0};

  bulkdata args = {0, NULL};
  struct echo_reply reply = {NULL, 0, 0};
  if (echo_mode) {
    args.bulkdata_len = echo_bytes;
    args.bulkdata_val = malloc(echo_bytes ? echo_bytes : 1);
    reply.cap = echo_bytes;
    reply.buf = malloc(echo_bytes ? echo_bytes : 1);
    if (args.bulkdata_val == NULL || reply.buf == NULL) fail("malloc", NULL);
    for (u_int i = 0; i < echo_bytes; i++) args.bulkdata_val[i] = (char)(i & 0xff);
  }

  pthread_barrier_wait(&ready);
  pthread_barrier_wait(&go); /* main has set the deadline */
  long calls = 0;
  while (before_deadline()) {
    enum clnt_stat stat;
    if (echo_mode) {
      char first = (char)calls, last = (char)(calls >> 8);
      if (echo_bytes > 0) {
        args.bulkdata_val[0] = first;
        args.bulkdata_val[echo_bytes - 1] = last;
        reply.buf[0] = (char)~first;
        reply.buf[echo_bytes - 1] = (char)~last;
      }
      reply.len = 0;
      stat = clnt_call(clnt, ECHOPROC_NUM, (xdrproc_t)xdr_bulkdata, (char *)&args, (xdrproc_t)xdr_echo_reply, (char *)&reply, timeout);
      if (stat != RPC_SUCCESS) fail("echo", clnt);
      if (reply.len != echo_bytes || (echo_bytes > 0 && (reply.buf[0] != first || reply.buf[echo_bytes - 1] != last))) {
        pthread_mutex_lock(&fail_lock);
        fprintf(stderr, "bulk_tcp_client: echo: wrong reply (%u bytes for %u, or different first/last byte)\n", reply.len, echo_bytes);
        _exit(1);
      }
    } else {
      stat = clnt_call(clnt, NULLPROC_NUM, (xdrproc_t)xdr_void, NULL, (xdrproc_t)xdr_void, NULL, timeout);
      if (stat != RPC_SUCCESS) fail("null", clnt);
    }
    calls++;
  }
  w->calls = calls;
  clnt_destroy(clnt); /* closes nothing: the fd is ours */
  close(fd);
  free(args.bulkdata_val);
  free(reply.buf);
  return NULL;
}

static int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s <port> <program> <version> null <threads> <milliseconds>\n"
          "       %s <port> <program> <version> echo <threads> <milliseconds> <bytes>\n",
          argv0, argv0);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 7) return usage(argv[0]);
  port = (unsigned short)strtoul(argv[1], NULL, 0);
  program = (rpcprog_t)strtoul(argv[2], NULL, 0);
  version = (rpcvers_t)strtoul(argv[3], NULL, 0);
  if (strcmp(argv[4], "null") == 0 && argc == 7) echo_mode = 0;
  else if (strcmp(argv[4], "echo") == 0 && argc == 8) echo_mode = 1;
  else return usage(argv[0]);
  int threads = atoi(argv[5]);
  long ms = atol(argv[6]);
  if (echo_mode) echo_bytes = (u_int)strtoul(argv[7], NULL, 0);
  if (port == 0 || threads < 1 || ms < 1) return usage(argv[0]);
  const char *env = getenv("BULK_TCP_BUFSZ");
  bufsz = env ? (u_int)strtoul(env, NULL, 0) : 0;

  struct worker *workers = calloc((size_t)threads, sizeof *workers);
  if (workers == NULL) fail("calloc", NULL);
  pthread_barrier_init(&ready, NULL, (unsigned)threads + 1);
  pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
  for (int i = 0; i < threads; i++) {
    int err = pthread_create(&workers[i].thread, NULL, run, &workers[i]);
    if (err != 0) {
      errno = err;
      fail("pthread_create", NULL);
    }
  }
  pthread_barrier_wait(&ready); /* every thread connected */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  deadline.tv_sec = t0.tv_sec + ms / 1000;
  deadline.tv_nsec = t0.tv_nsec + (ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_barrier_wait(&go);
  long calls = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(workers[i].thread, NULL);
    calls += workers[i].calls;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("calls=%ld seconds=%.6f bytes=%.0f\n", calls, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
         (double)calls * (double)echo_bytes);
  free(workers);
  return 0;
}
