#!/usr/bin/env bash
# usage: import-image.sh REF ROOTFS-DIR [ENTRYPOINT...]
# Packs ROOTFS-DIR (e.g. a folder holding one static binary, plus /etc/passwd if needed) into a
# single-layer OCI image named REF and imports it into the dev node's containerd (namespace k8s.io,
# which the kubelet's CRI uses). Pods then run it with `image: REF` and imagePullPolicy IfNotPresent
# or Never; nothing is ever pulled. A REF without a registry is stored as docker.io/library/NAME
# (or docker.io/NAME), the name the CRI resolves it to; prefer e.g. mooc.local/NAME:TAG.
# The node's containerd socket: $MOOC_CONTAINERD_ADDRESS (printed by dev/env), else the default.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,9s/^# \{0,1\}//p' "$0" >&2; exit 2; }
ref=$1 rootfs=$2; shift 2
[ -d "$rootfs" ] || { echo "import-image: $rootfs is not a directory" >&2; exit 2; }
sock=${MOOC_CONTAINERD_ADDRESS:-${MOOC_RUN:-/tmp/mooc-recsys-dev}/kubernetes/containerd/containerd.sock}
first=${ref%%/*}
if [ "$first" = "$ref" ]; then
  ref=docker.io/library/$ref
elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then
  ref=docker.io/$ref
fi
last=${ref##*/}
[[ "$last" == *:* || "$ref" == *@* ]] || ref=$ref:latest
tar=$(mktemp "${TMPDIR:-/tmp}/mooc-image.XXXXXX.tar")
trap 'rm -f "$tar"' EXIT
python3 "$(dirname "$0")/oci-image.py" "$rootfs" "$ref" "$tar" "$@"
ctr --address "$sock" --namespace k8s.io images import "$tar" >/dev/null
echo "$ref"
