#!/usr/bin/env bash
# Generates a throwaway CA, a server certificate (SAN DNS:$2, IP:127.0.0.1) and a client certificate
# with the openssl CLI, into directory $1. EC P-256 keys; valid for 2 days.
#   interop/pki.sh DIR NAME
set -euo pipefail
dir=$1 name=$2
mkdir -p "$dir" && cd "$dir"
ossl() { openssl "$@" 2>>openssl.log; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
  -subj "/CN=rpctls interop CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
issue() { # issue BASENAME SUBJECT EXTENSIONS
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
  printf '%s\n' "$3" > "$1.ext"
  ossl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out "$1.pem" -extfile "$1.ext"
  rm -f "$1.csr"
}
issue server "/CN=$name" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,1.3.6.1.5.5.7.3.34
subjectAltName=DNS:$name,IP:127.0.0.1"
issue client "/CN=client.$name" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth,1.3.6.1.5.5.7.3.33
subjectAltName=DNS:client.$name"
chmod 600 ./*.key
