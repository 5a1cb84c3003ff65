#!/usr/bin/env bash
# usage: binary-image.sh REF BINARY [ARGS...]
# Packs a dynamically linked binary of this project, stripped, with the shared libraries `ldd`
# names (and the loader) into a minimal image REF for the dev node, entrypoint /<name> [ARGS...].
# The node runs locally built images only: this is how our binaries get there (no registry).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,5s/^# \{0,1\}//p' "$0" >&2; exit 2; }
ref=$1 binary=$2; shift 2
rootfs=$(mktemp -d "${TMPDIR:-/tmp}/mooc-rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
name=$(basename "$binary")
objcopy --strip-debug "$binary" "$rootfs/$name"
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
mkdir -p "$rootfs/tmp" "$rootfs/etc/ssl/certs"
echo 'nobody:x:65534:65534:nobody:/:/sbin/nologin' >"$rootfs/etc/passwd"
# TLS clients (the AWS SDK, kube) refuse to start without a trust store, even for http endpoints.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
"$(dirname "$0")/import-image.sh" "$ref" "$rootfs" "/$name" "$@"
