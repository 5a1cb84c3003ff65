#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet (and mooc-cri) from the Go module
# proxy in ONE `go build` (they share most of their packages), static (CGO_ENABLED=0).
#
# usage: build-binaries.sh K8S_VERSION ETCD_VERSION OUTDIR      e.g. v1.36.3 v3.6.8 ~/.cache/.../bin
#
# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and
# replaces them with ./staging/src/...; those replaces are ignored when it is a dependency, so a
# wrapper module replaces each one with its published v0.<minor>.<patch> tag. etcd's server module
# has a main package (go.etcd.io/etcd/server/v3), built in the same module graph.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KV=$1 EV=$2 OUT=$3
MINOR=$(echo "$KV" | cut -d. -f2)
SV="v0.${KV#v1.}"                      # v1.36.3 -> v0.36.3
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"

W=$(mktemp -d "${TMPDIR:-/tmp}/mooc-k8sbuild.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
go mod init local/k8sbuild >/dev/null 2>&1

# k8s.io/kubernetes' own go.mod (only the .mod file is fetched for this step).
GOMOD=$(go mod download -json "k8s.io/kubernetes@$KV" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
[ -f "$GOMOD" ] || { echo "cannot fetch k8s.io/kubernetes@$KV from the Go module proxy" >&2; exit 1; }
go mod edit -go="$(awk '/^go /{print $2; exit}' "$GOMOD")"
# Keep Kubernetes' GODEBUG defaults (a dependency's godebug lines are ignored otherwise).
grep '^godebug' "$GOMOD" >>go.mod || true

for m in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$GOMOD" | sort -u); do
  if go mod download -json "$m@$SV" >/dev/null 2>&1; then
    go mod edit -replace="$m=$m@$SV"
  else   # not published (sample-apiserver, ...): no binary built here imports it, a stub suffices
    mkdir -p "stub/$m" && printf 'module %s\n\ngo 1.22\n' "$m" >"stub/$m/go.mod"
    go mod edit -replace="$m=./stub/$m"
    echo "stubbed $m" >&2
  fi
done

PKGS=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet)
go get "${PKGS[@]/%/@$KV}" "go.etcd.io/etcd/server/v3@$EV" >/dev/null
# mooc-cri (a tiny CRI client for dev/down's cleanup) compiles against the same graph.
mkdir -p cmd/mooc-cri && cp "$HERE/mooc-cri/main.go" cmd/mooc-cri/
echo "module graph: etcd server $(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)," \
  "etcd client $(go list -m -f '{{.Version}}' go.etcd.io/etcd/client/v3)" >&2

LD="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LD="$LD -X $pkg.gitVersion=$KV -X $pkg.gitMajor=1 -X $pkg.gitMinor=$MINOR -X $pkg.gitTreeState=clean"
  LD="$LD -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
mkdir -p "$OUT.tmp"
go build -trimpath -tags=selinux,notest -ldflags "$LD" -o "$OUT.tmp/" "${PKGS[@]}" \
  go.etcd.io/etcd/server/v3 ./cmd/mooc-cri
mv "$OUT.tmp/server" "$OUT.tmp/etcd"   # go names go.etcd.io/etcd/server/v3's binary "server"
cp go.mod "$OUT.tmp/build-go.mod"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
