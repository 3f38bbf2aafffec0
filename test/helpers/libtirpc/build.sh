#!/bin/sh
# Builds the libtirpc bulk server and its UDP and TCP clients: build.sh <source dir> <output dir>.
# Output: <output dir>/bulk_server, <output dir>/bulk_udp_client and <output dir>/bulk_tcp_client.
# rpcgen makes the header, the XDR routines and the dispatch routine (-m: no main); server.c has main().
set -eu
src=$(cd "$1" && pwd)
out=$2
mkdir -p "$out"
cd "$out"
cp "$src/bulk.x" "$src/server.c" "$src/udp_client.c" "$src/tcp_client.c" .
# -M: procedures take a result pointer and the dispatcher frees the result after sending (no statics).
rpcgen -M -h -o bulk.h bulk.x
rpcgen -M -c -o bulk_xdr.c bulk.x
rpcgen -M -m -o bulk_svc.c bulk.x
rpcgen -M -l -o bulk_clnt.c bulk.x
if flags=$(pkg-config --cflags --libs libtirpc 2>/dev/null); then :; else flags="-I/usr/include/tirpc -ltirpc"; fi
# shellcheck disable=SC2086
gcc -O2 -g -Wall -Wno-unused-variable -Wno-unused-but-set-variable -o bulk_server.tmp server.c bulk_svc.c bulk_xdr.c $flags
# shellcheck disable=SC2086
gcc -O2 -g -Wall -Wno-unused-variable -o bulk_udp_client.tmp udp_client.c bulk_clnt.c bulk_xdr.c $flags
# shellcheck disable=SC2086
gcc -O2 -g -Wall -Wno-unused-variable -pthread -o bulk_tcp_client.tmp tcp_client.c bulk_xdr.c $flags
mv bulk_server.tmp bulk_server
mv bulk_udp_client.tmp bulk_udp_client
mv bulk_tcp_client.tmp bulk_tcp_client
