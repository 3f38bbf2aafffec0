/*
 * rpctls test/benchmark peer: a real libtirpc server for bulk.x (program 0x20000777 version 1).
 * Built by build.sh (rpcgen makes the XDR routines and the dispatch routine bulk_prog_1); spawned by
 * ../libtirpc.ts.
 *
 * Serves TCP and UDP on 127.0.0.1, on ports the kernel picks; never talks to rpcbind (svc_reg with a
 * NULL netconfig only fills the dispatch table). Prints `ready tcp=<port> udp=<port>` once both are
 * served, then serves until stdin reaches EOF (the parent went away) or SIGTERM/SIGINT, and exits 0.
 *
 * The loop is svc_run's, plus stdin in the poll set. Single-threaded, like a default libtirpc server.
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rpc/rpc.h>
#include <rpc/svc.h>

#include "bulk.h"

/* From rpcgen -m output. */
extern void bulk_prog_1(struct svc_req *, SVCXPRT *);

/*
 * Buffer sizes asked of libtirpc. It clamps both to 256 KiB anyway (__rpc_get_t_size), which for TCP is
 * only the fragment size of the record stream: larger records are read and written fragment by
 * fragment, so 1 MiB payloads pass. For UDP it bounds the datagram (the IPv4 maximum is 65507).
 */
#define TCP_BUFSZ (4u * 1024 * 1024)
#define UDP_BUFSZ 65536u
/* Largest READ reply served; a larger count is answered GARBAGE_ARGS rather than allocated. */
#define READ_MAX (64u * 1024 * 1024)

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

/* Binds a socket of the given type to 127.0.0.1 on a kernel-chosen port; returns the fd, *port set. */
static int bind_loopback(int type, unsigned short *port) {
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) {
    perror("socket");
    exit(1);
  }
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = 0;
  if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
    perror("bind");
    exit(1);
  }
  socklen_t len = sizeof sin;
  if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
    perror("getsockname");
    exit(1);
  }
  *port = ntohs(sin.sin_port);
  return fd;
}

bool_t bulk_null_1_svc(void *argp, void *result, struct svc_req *rqstp) {
  (void)argp;
  (void)result;
  (void)rqstp;
  return TRUE;
}

bool_t bulk_echo_1_svc(bulkdata *argp, bulkdata *result, struct svc_req *rqstp) {
  (void)rqstp;
  /* Hand the argument's buffer to the result: svc_freeargs then frees nothing (NULL), and
     bulk_prog_1_freeresult frees it after the reply is sent. */
  result->bulkdata_len = argp->bulkdata_len;
  result->bulkdata_val = argp->bulkdata_val;
  argp->bulkdata_len = 0;
  argp->bulkdata_val = NULL;
  return TRUE;
}

bool_t bulk_write_1_svc(bulkdata *argp, u_int *result, struct svc_req *rqstp) {
  (void)rqstp;
  *result = argp->bulkdata_len;
  return TRUE;
}

bool_t bulk_read_1_svc(u_int *argp, bulkdata *result, struct svc_req *rqstp) {
  u_int count = *argp;
  result->bulkdata_len = 0;
  result->bulkdata_val = NULL;
  if (count > READ_MAX) {
    svcerr_decode(rqstp->rq_xprt);
    return FALSE; /* the dispatcher sends nothing more */
  }
  char *data = malloc(count ? count : 1);
  if (data == NULL) {
    svcerr_systemerr(rqstp->rq_xprt);
    return FALSE;
  }
  for (u_int i = 0; i < count; i++) data[i] = (char)(i & 0xff);
  result->bulkdata_len = count;
  result->bulkdata_val = data;
  return TRUE;
}

int bulk_prog_1_freeresult(SVCXPRT *transp, xdrproc_t xdr_result, caddr_t result) {
  (void)transp;
  xdr_free(xdr_result, result);
  return 1;
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR and the loop ends */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  /* A client that disconnects while its reply is written must not kill the server. */
  signal(SIGPIPE, SIG_IGN);

  unsigned short tcp_port, udp_port;
  int tcp_fd = bind_loopback(SOCK_STREAM, &tcp_port);
  if (listen(tcp_fd, SOMAXCONN) < 0) {
    perror("listen");
    return 1;
  }
  int udp_fd = bind_loopback(SOCK_DGRAM, &udp_port);

  SVCXPRT *tcp = svc_vc_create(tcp_fd, TCP_BUFSZ, TCP_BUFSZ);
  if (tcp == NULL) {
    fprintf(stderr, "svc_vc_create failed\n");
    return 1;
  }
  SVCXPRT *udp = svc_dg_create(udp_fd, UDP_BUFSZ, UDP_BUFSZ);
  if (udp == NULL) {
    fprintf(stderr, "svc_dg_create failed\n");
    return 1;
  }
  /* NULL netconfig: registered with the dispatcher only, nothing sent to rpcbind. */
  if (!svc_reg(tcp, BULK_PROG, BULK_VERS, bulk_prog_1, NULL) || !svc_reg(udp, BULK_PROG, BULK_VERS, bulk_prog_1, NULL)) {
    fprintf(stderr, "svc_reg failed\n");
    return 1;
  }

  printf("ready tcp=%u udp=%u\n", (unsigned)tcp_port, (unsigned)udp_port);
  fflush(stdout);

  struct pollfd *fds = NULL;
  int cap = 0;
  while (!stopping) {
    /* svc_pollfd changes as connections come and go: copy it each time, stdin last. */
    int n = svc_max_pollfd;
    if (n + 1 > cap) {
      cap = n + 1;
      fds = realloc(fds, (size_t)cap * sizeof *fds);
      if (fds == NULL) {
        perror("realloc");
        return 1;
      }
    }
    memcpy(fds, svc_pollfd, (size_t)n * sizeof *fds);
    fds[n].fd = STDIN_FILENO;
    fds[n].events = POLLIN;
    fds[n].revents = 0;
    int ready = poll(fds, (nfds_t)n + 1, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      perror("poll");
      return 1;
    }
    if (fds[n].revents != 0) {
      char buf[256];
      ssize_t got = read(STDIN_FILENO, buf, sizeof buf);
      if (got <= 0) break; /* EOF or error: the parent is gone */
      ready--;
    }
    /* Looks only at the first svc_max_pollfd entries, so stdin is never mistaken for a transport. */
    if (ready > 0) svc_getreq_poll(fds, ready);
  }
  free(fds);
  svc_destroy(tcp);
  svc_destroy(udp);
  return 0;
}
