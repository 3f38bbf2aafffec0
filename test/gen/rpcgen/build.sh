#!/bin/sh
# Builds the rpcgen echo harness for one .x file.
# usage: build.sh <file.x> <work dir containing types.inc>
# Needs rpcgen and gcc, and libtirpc (headers and library): apt-get install rpcsvc-proto libtirpc-dev gcc
set -eu
src=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
cp "$src" "$work/prot.x"
cp "$here/echo.c" "$work/echo.c"
cd "$work"
rpcgen -h -o prot.h prot.x
rpcgen -c -o prot_xdr.c prot.x
gcc -O1 -w -I/usr/include/tirpc -I. -o echo prot_xdr.c echo.c -ltirpc
