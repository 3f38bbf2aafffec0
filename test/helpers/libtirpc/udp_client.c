/*
 * rpctls test/benchmark peer: a libtirpc UDP client for bulk.x (rpcgen -l stubs), so tests can check
 * that a C client gets byte-exact answers from rpctls's UDP server, and the benchmark can time NULL
 * calls from C against both servers. Built by build.sh next to bulk_server.
 *
 *   bulk_udp_client <port> echo <hex>      prints the ECHO result as hex
 *   bulk_udp_client <port> read <count>    prints the READ result as hex
 *   bulk_udp_client <port> write <hex>     prints the WRITE result (a byte count)
 *   bulk_udp_client <port> bench <calls>   NULL calls one at a time; prints "calls=<n> seconds=<s>"
 *
 * Talks to 127.0.0.1:<port> with clntudp_create (libtirpc's UDPMSGSIZE buffers). Exit 1 on any RPC error,
 * with clnt_sperror on stderr.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <rpc/rpc.h>

#include "bulk.h"

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bulkdata from_hex(const char *hex) {
  bulkdata d;
  size_t n = strlen(hex) / 2;
  d.bulkdata_len = (u_int)n;
  d.bulkdata_val = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++) d.bulkdata_val[i] = (char)(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
  return d;
}

static void print_hex(const bulkdata *d) {
  for (u_int i = 0; i < d->bulkdata_len; i++) printf("%02x", (unsigned char)d->bulkdata_val[i]);
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <port> echo|read|write|bench <arg>\n", argv[0]);
    return 2;
  }
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons((unsigned short)atoi(argv[1]));
  int sock = RPC_ANYSOCK;
  struct timeval wait = {1, 0}; /* retransmit interval */
  CLIENT *clnt = clntudp_create(&sin, BULK_PROG, BULK_VERS, wait, &sock);
  if (clnt == NULL) {
    clnt_pcreateerror("clntudp_create");
    return 1;
  }
  const char *op = argv[2];
  enum clnt_stat stat;
  if (strcmp(op, "echo") == 0) {
    bulkdata args = from_hex(argv[3]), result;
    memset(&result, 0, sizeof result);
    stat = bulk_echo_1(&args, &result, clnt);
    if (stat == RPC_SUCCESS) print_hex(&result);
  } else if (strcmp(op, "read") == 0) {
    u_int count = (u_int)strtoul(argv[3], NULL, 10);
    bulkdata result;
    memset(&result, 0, sizeof result);
    stat = bulk_read_1(&count, &result, clnt);
    if (stat == RPC_SUCCESS) print_hex(&result);
  } else if (strcmp(op, "write") == 0) {
    bulkdata args = from_hex(argv[3]);
    u_int result = 0;
    stat = bulk_write_1(&args, &result, clnt);
    if (stat == RPC_SUCCESS) printf("%u\n", result);
  } else if (strcmp(op, "bench") == 0) {
    long calls = atol(argv[3]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    stat = RPC_SUCCESS;
    for (long i = 0; i < calls && stat == RPC_SUCCESS; i++) stat = bulk_null_1(NULL, NULL, clnt);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (stat == RPC_SUCCESS) printf("calls=%ld seconds=%.6f\n", calls, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  } else {
    fprintf(stderr, "unknown operation %s\n", op);
    return 2;
  }
  if (stat != RPC_SUCCESS) {
    fprintf(stderr, "%s\n", clnt_sperror(clnt, op));
    return 1;
  }
  clnt_destroy(clnt);
  return 0;
}
