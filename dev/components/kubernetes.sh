# A real single-node Kubernetes on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler built from the Go module proxy, and a node where pods really run (kubelet built in
# the same `go build`, Debian's containerd + runc, the bridge CNI plugin, our own pause image).
# See docs/local-kubernetes.md. Daemons: k8s-etcd, kubernetes (kube-apiserver, so that dev/up and
# dev/status find "the" kubernetes pid), k8s-controller-manager, k8s-scheduler, k8s-containerd,
# k8s-kubelet; each logs to $MOOC_RUN/<daemon>.log.
K8S_VERSION=v1.36.3        # k8s.io/kubernetes; staging modules (k8s.io/api, ...) at v0.36.3
ETCD_VERSION=v3.6.8        # the etcd that k8s.io/kubernetes v1.36.3 itself requires
K8S_HOME=$MOOC_CACHE/kubernetes-$K8S_VERSION-etcd-$ETCD_VERSION
K8S_BIN=$K8S_HOME/bin
K8S_SRC=$DEV_DIR/k8s

MOOC_ETCD_PORT=${MOOC_ETCD_PORT:-12379}
MOOC_ETCD_PEER_PORT=${MOOC_ETCD_PEER_PORT:-12380}
MOOC_K8S_API_PORT=${MOOC_K8S_API_PORT:-16443}
MOOC_KCM_PORT=${MOOC_KCM_PORT:-12257}
MOOC_SCHEDULER_PORT=${MOOC_SCHEDULER_PORT:-12259}
MOOC_KUBELET_PORT=${MOOC_KUBELET_PORT:-12250}
MOOC_KUBELET_HEALTHZ_PORT=${MOOC_KUBELET_HEALTHZ_PORT:-12248}
# Pods live on the bridge mooc0 in 10.244.0.0/24. The bridge's own address is the node's IP and the
# address under which pods reach the host's 127.0.0.1 services (see k8s_host_nat).
K8S_NODE_NAME=mooc-node
K8S_BRIDGE=mooc0
K8S_POD_SUBNET=10.244.0.0/24
K8S_NODE_IP=10.244.0.1
K8S_SERVICE_CIDR=10.0.0.0/24
K8S_API_SERVICE_IP=10.0.0.1
K8S_NAT_CHAIN=MOOC-K8S-HOST

K8S_RUN=$MOOC_RUN/kubernetes
K8S_PKI=$K8S_RUN/pki
K8S_CONTAINERD_SOCK=$K8S_RUN/containerd/containerd.sock
K8S_KUBECONFIG=$MOOC_RUN/kubeconfig
K8S_PAUSE_IMAGE=mooc.local/pause:dev

# The node's own small images (pause, probe): rebuilt when their sources change.
k8s_images_home() {
  local hash
  hash=$(cat "$K8S_SRC/images/go.mod" "$K8S_SRC"/images/*/main.go "$K8S_SRC/oci-image.py" | sha256sum | cut -c1-12)
  echo "$MOOC_CACHE/kubernetes-images-$hash"
}

K8S_BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet mooc-cri)

k8s_binaries_built() {
  local b
  for b in "${K8S_BINARIES[@]}"; do [ -x "$K8S_BIN/$b" ] || return 1; done
}

kubernetes_install() {
  apt_install containerd runc containernetworking-plugins iptables openssl curl python3
  command -v go >/dev/null || die "Go (>= the go line of k8s.io/kubernetes $K8S_VERSION's go.mod) is needed"
  if ! k8s_binaries_built; then
    log "building Kubernetes $K8S_VERSION and etcd $ETCD_VERSION from the Go module proxy (cold: ~15-20 min on 2 cores)"
    mkdir -p "$K8S_HOME"
    "$K8S_SRC/build-binaries.sh" "$K8S_VERSION" "$ETCD_VERSION" "$K8S_BIN" >"$K8S_HOME/build.log" 2>&1 ||
      die "building Kubernetes failed; see $K8S_HOME/build.log"
  fi
  k8s_build_images
}

k8s_build_images() {
  local images; images=$(k8s_images_home)
  if [ ! -f "$images/pause.tar" ]; then
    log "building the node's pause and probe images"
    rm -rf "$images" "$images.tmp" && mkdir -p "$images.tmp/pause/rootfs" "$images.tmp/probe/rootfs"
    (cd "$K8S_SRC/images" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
      go build -trimpath -ldflags="-s -w" -o "$images.tmp/pause/rootfs/pause" ./pause &&
      CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
      go build -trimpath -ldflags="-s -w" -o "$images.tmp/probe/rootfs/probe" ./probe) ||
      die "building the pause/probe images failed"
    python3 "$K8S_SRC/oci-image.py" "$images.tmp/pause/rootfs" "$K8S_PAUSE_IMAGE" "$images.tmp/pause.tar" /pause
    python3 "$K8S_SRC/oci-image.py" "$images.tmp/probe/rootfs" mooc.local/probe:dev "$images.tmp/probe.tar" /probe
    mv "$images.tmp" "$images"
  fi
}

# --- PKI: one throwaway CA per `dev/up`; ECDSA P-256 keys in PKCS#8.
k8s_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# k8s_cert NAME CN ORG(or "") clientAuth|serverAuth [SAN]
k8s_cert() {
  local name=$1 cn=$2 org=$3 usage=$4 san=${5:-}
  k8s_key "$K8S_PKI/$name.key"
  openssl req -new -key "$K8S_PKI/$name.key" -subj "/CN=$cn${org:+/O=$org}" -out "$K8S_PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } >"$K8S_PKI/$name.ext"
  openssl x509 -req -in "$K8S_PKI/$name.csr" -CA "$K8S_PKI/ca.crt" -CAkey "$K8S_PKI/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 30 -extfile "$K8S_PKI/$name.ext" \
    -out "$K8S_PKI/$name.crt" 2>/dev/null
  rm -f "$K8S_PKI/$name.csr" "$K8S_PKI/$name.ext"
}

# k8s_kubeconfig FILE CERT-NAME: a kubeconfig with the certificates embedded.
k8s_kubeconfig() {
  local file=$1 name=$2 b64='base64 -w0'
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: mooc-dev
  cluster:
    server: https://127.0.0.1:$MOOC_K8S_API_PORT
    certificate-authority-data: $($b64 "$K8S_PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $($b64 "$K8S_PKI/$name.crt")
    client-key-data: $($b64 "$K8S_PKI/$name.key")
contexts:
- name: mooc-dev
  context: {cluster: mooc-dev, user: $name, namespace: default}
current-context: mooc-dev
KC
  chmod 600 "$file"
}

k8s_pki() {
  mkdir -p "$K8S_PKI" && chmod 700 "$K8S_PKI"
  k8s_key "$K8S_PKI/ca.key"
  openssl req -x509 -new -key "$K8S_PKI/ca.key" -subj "/CN=mooc-dev-ca" -days 30 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$K8S_PKI/ca.crt" 2>/dev/null
  k8s_cert apiserver kube-apiserver "" serverAuth \
    "IP:127.0.0.1,IP:$K8S_API_SERVICE_IP,IP:$K8S_NODE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  k8s_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth
  k8s_cert admin mooc-admin system:masters clientAuth
  k8s_cert controller-manager system:kube-controller-manager "" clientAuth
  k8s_cert scheduler system:kube-scheduler "" clientAuth
  k8s_cert kubelet-client "system:node:$K8S_NODE_NAME" system:nodes clientAuth
  k8s_cert kubelet-serving "system:node:$K8S_NODE_NAME" system:nodes serverAuth \
    "IP:$K8S_NODE_IP,IP:127.0.0.1,DNS:$K8S_NODE_NAME"
  k8s_key "$K8S_PKI/sa.key"
  openssl pkey -in "$K8S_PKI/sa.key" -pubout -out "$K8S_PKI/sa.pub" 2>/dev/null
  k8s_kubeconfig "$K8S_KUBECONFIG" admin
  k8s_kubeconfig "$K8S_PKI/controller-manager.kubeconfig" controller-manager
  k8s_kubeconfig "$K8S_PKI/scheduler.kubeconfig" scheduler
  k8s_kubeconfig "$K8S_PKI/kubelet.kubeconfig" kubelet-client
}

k8s_kubectl() { kubectl --kubeconfig="$K8S_KUBECONFIG" --request-timeout=5s "$@"; }
k8s_healthz() { curl -skf --max-time 2 "https://127.0.0.1:$1/healthz" >/dev/null; }
k8s_apiserver_ready() { k8s_kubectl get --raw=/readyz >/dev/null 2>&1; }
k8s_node_ready() {
  [ "$(k8s_kubectl get node "$K8S_NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
k8s_default_sa() { k8s_kubectl -n default get serviceaccount default >/dev/null 2>&1; }

# --- Node network. The bridge is created here (not lazily by the CNI plugin) so that its address
# exists before kubelet starts: it is the node IP and kubelet's listen address.
k8s_network_up() {
  ip link show "$K8S_BRIDGE" >/dev/null 2>&1 || ip link add "$K8S_BRIDGE" type bridge
  ip addr replace "$K8S_NODE_IP/${K8S_POD_SUBNET#*/}" dev "$K8S_BRIDGE"
  ip link set "$K8S_BRIDGE" up
  # Pods' traffic is routed through the host; dev/down restores the previous setting.
  [ -f "$K8S_RUN/ip_forward.orig" ] || sysctl -n net.ipv4.ip_forward >"$K8S_RUN/ip_forward.orig"
  sysctl -qw net.ipv4.ip_forward=1
  k8s_host_nat
}

# Pods reach the host's 127.0.0.1 services: a TCP connection from a pod to $K8S_NODE_IP:<port> is
# DNATed to 127.0.0.1:<port> (route_localnet lets the kernel route to 127.0.0.1 from the bridge) and
# SNATed to 127.0.0.1, so the service sees a local client (pg_hba's 127.0.0.1 line applies).
# The `kubernetes` Service IP ($K8S_API_SERVICE_IP:443) goes to the API server the same way, from
# pods and from the host (hostNetwork pods) alike: no kube-proxy is needed for in-cluster clients.
k8s_host_nat() {
  sysctl -qw "net.ipv4.conf.$K8S_BRIDGE.route_localnet=1"
  k8s_host_nat_down
  iptables -w -t nat -N "$K8S_NAT_CHAIN"
  iptables -w -t nat -A "$K8S_NAT_CHAIN" -d "$K8S_API_SERVICE_IP/32" -p tcp --dport 443 \
    -j DNAT --to-destination "127.0.0.1:$MOOC_K8S_API_PORT"
  iptables -w -t nat -A "$K8S_NAT_CHAIN" -d "$K8S_NODE_IP/32" -p tcp -j DNAT --to-destination 127.0.0.1
  local rule
  for rule in "${K8S_NAT_JUMPS[@]}"; do
    # shellcheck disable=SC2086
    iptables -w -t nat -I $rule
  done
}

# The rules that lead into $K8S_NAT_CHAIN (word-split on purpose).
K8S_NAT_JUMPS=(
  "PREROUTING -i $K8S_BRIDGE -j $K8S_NAT_CHAIN"
  "OUTPUT -d $K8S_API_SERVICE_IP/32 -p tcp --dport 443 -j DNAT --to-destination 127.0.0.1:$MOOC_K8S_API_PORT"
  "INPUT -s $K8S_POD_SUBNET -d 127.0.0.1/32 -j SNAT --to-source 127.0.0.1"
)

k8s_host_nat_down() {
  local rule
  for rule in "${K8S_NAT_JUMPS[@]}"; do
    # shellcheck disable=SC2086
    while iptables -w -t nat -D $rule 2>/dev/null; do :; done
  done
  iptables -w -t nat -F "$K8S_NAT_CHAIN" 2>/dev/null || true
  iptables -w -t nat -X "$K8S_NAT_CHAIN" 2>/dev/null || true
}

k8s_write_configs() {
  mkdir -p "$K8S_RUN/containerd" "$K8S_RUN/cni/net.d" "$K8S_RUN/kubelet" "$K8S_RUN/pod-logs"
  cat >"$K8S_RUN/containerd/config.toml" <<TOML
version = 2
root = "$K8S_RUN/containerd/root"
state = "$K8S_RUN/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$K8S_CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$K8S_RUN/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$K8S_PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  # We are root without CAP_SYS_RESOURCE here, so oom_score_adj cannot go below ours (kubelet asks
  # -998 for sandboxes): clamp instead of failing every sandbox ("can't get final child's PID").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$K8S_RUN/containerd/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$K8S_RUN/cni/net.d"
TOML
  # containerd adds the loopback interface itself (go-cni's loopback plugin from bin_dir).
  cat >"$K8S_RUN/cni/net.d/10-mooc.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "mooc",
  "plugins": [
    {"type": "bridge", "bridge": "$K8S_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$K8S_RUN/cni/ipam",
              "ranges": [[{"subnet": "$K8S_POD_SUBNET", "gateway": "$K8S_NODE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  cat >"$K8S_RUN/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $K8S_NODE_IP
port: $MOOC_KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $MOOC_KUBELET_HEALTHZ_PORT
tlsCertFile: $K8S_PKI/kubelet-serving.crt
tlsPrivateKeyFile: $K8S_PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $K8S_PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$K8S_CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
podLogsDir: $K8S_RUN/pod-logs
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
serializeImagePulls: false
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
maxPods: 110
YAML
}

kubernetes_start() {
  k8s_binaries_built || die "Kubernetes is not built; run dev/install (or kubernetes_install)"
  local images; images=$(k8s_images_home)
  # Each start is a fresh cluster (new CA, empty etcd); kubernetes_stop unmounts everything first.
  ! grep -q " $K8S_RUN/" /proc/self/mounts || die "mounts left under $K8S_RUN; run dev/down first"
  rm -rf "$K8S_RUN" && mkdir -p "$K8S_RUN"
  k8s_pki

  start_daemon k8s-etcd "$K8S_BIN/etcd" --name mooc --data-dir "$K8S_RUN/etcd" \
    --listen-client-urls "http://127.0.0.1:$MOOC_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$MOOC_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$MOOC_ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$MOOC_ETCD_PEER_PORT" \
    --initial-cluster "mooc=http://127.0.0.1:$MOOC_ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
  wait_until etcd 30 curl -sf --max-time 2 "http://127.0.0.1:$MOOC_ETCD_PORT/health" -o /dev/null ||
    die "etcd did not start; see $MOOC_RUN/k8s-etcd.log"

  # The node's network first: the API server's kubelet client and the node IP need the bridge.
  k8s_network_up
  k8s_write_configs
  start_daemon k8s-containerd containerd --config "$K8S_RUN/containerd/config.toml"

  local p=$K8S_PKI
  start_daemon kubernetes "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$MOOC_ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$MOOC_K8S_API_PORT" \
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" --client-ca-file="$p/ca.crt" \
    --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" --kubelet-client-key="$p/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$p/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
    --service-cluster-ip-range="$K8S_SERVICE_CIDR" --allow-privileged=true --profiling=false \
    --cert-dir="$K8S_RUN/apiserver-certs"
  wait_until kube-apiserver 90 k8s_apiserver_ready || die "kube-apiserver did not start; see $MOOC_RUN/kubernetes.log"

  # All default controllers (Job, CronJob, Deployment/ReplicaSet, garbage collector, namespace,
  # TTL-after-finished, service accounts and their tokens, root CA publisher, node lifecycle, ...).
  start_daemon k8s-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$p/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$p/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$p/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$MOOC_KCM_PORT" --leader-elect=false \
    --controllers='*' --use-service-account-credentials=true \
    --root-ca-file="$p/ca.crt" --service-account-private-key-file="$p/sa.key" \
    --cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key" \
    --service-cluster-ip-range="$K8S_SERVICE_CIDR" --cluster-name=mooc-dev --profiling=false
  start_daemon k8s-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$p/scheduler.kubeconfig" \
    --authentication-kubeconfig="$p/scheduler.kubeconfig" --authorization-kubeconfig="$p/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$MOOC_SCHEDULER_PORT" --leader-elect=false --profiling=false

  wait_until containerd 30 ctr --address "$K8S_CONTAINERD_SOCK" version >/dev/null 2>&1 ||
    die "containerd did not start; see $MOOC_RUN/k8s-containerd.log"
  k8s_ctr images import "$images/pause.tar" >/dev/null || die "importing the pause image failed"
  k8s_ctr images import "$images/probe.tar" >/dev/null || die "importing the probe image failed"

  start_daemon k8s-kubelet "$K8S_BIN/kubelet" --config="$K8S_RUN/kubelet/config.yaml" \
    --kubeconfig="$p/kubelet.kubeconfig" --root-dir="$K8S_RUN/kubelet" \
    --hostname-override="$K8S_NODE_NAME" --node-ip="$K8S_NODE_IP" --v=1

  wait_until kube-controller-manager 60 k8s_healthz "$MOOC_KCM_PORT" ||
    die "kube-controller-manager did not start; see $MOOC_RUN/k8s-controller-manager.log"
  wait_until kube-scheduler 60 k8s_healthz "$MOOC_SCHEDULER_PORT" ||
    die "kube-scheduler did not start; see $MOOC_RUN/k8s-scheduler.log"
  wait_until "node $K8S_NODE_NAME" 120 k8s_node_ready || die "the node did not become Ready; see $MOOC_RUN/k8s-kubelet.log"
  # Pods cannot be created before the namespace's default ServiceAccount exists.
  wait_until "default ServiceAccount" 60 k8s_default_sa || die "no default ServiceAccount; see $MOOC_RUN/k8s-controller-manager.log"
}

k8s_ctr() { ctr --address "$K8S_CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# kubernetes_import_image REF ROOTFS-DIR ENTRYPOINT...: packs ROOTFS-DIR (e.g. a folder holding one
# static binary) into an OCI image and imports it into the node's containerd. Pods then use it with
# `image: REF` and imagePullPolicy IfNotPresent or Never (never `:latest`, which means Always).
# A REF without a registry is stored under docker.io/library/..., as the CRI resolves it.
kubernetes_import_image() {
  "$K8S_SRC/import-image.sh" "$@"
}

# What kubelet and containerd leave on the host outside $K8S_RUN once they are stopped (paths
# they hard-code). Only empty directories and our own links/rules are removed.
k8s_host_cleanup() {
  find /var/log/containers -maxdepth 1 -type l -lname "$K8S_RUN/*" -delete 2>/dev/null || true
  rmdir /var/log/containers 2>/dev/null || true
  rm -f /var/lib/kubelet/device-plugins/kubelet.sock
  rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet /var/lib/cni/results /var/lib/cni \
    /run/containerd/s /run/containerd/fifo /run/containerd /run/netns 2>/dev/null || true
  # Pod cgroups (cgroupfs driver): empty once every container is gone; remove deepest first.
  local d
  for d in /sys/fs/cgroup/*/kubepods; do
    if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
  # kubelet's iptables canaries and its "block incoming localnet connections" firewall chain.
  local ipt table
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    while "$ipt" -w -t filter -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    while "$ipt" -w -t filter -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    if "$ipt" -w -t filter -F KUBE-FIREWALL 2>/dev/null; then "$ipt" -w -t filter -X KUBE-FIREWALL || true; fi
    for table in mangle nat filter; do
      "$ipt" -w -t "$table" -X KUBE-KUBELET-CANARY 2>/dev/null || true
    done
    "$ipt" -w -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null || true
  done
  k8s_host_nat_down
  ! ip link show "$K8S_BRIDGE" >/dev/null 2>&1 || ip link delete "$K8S_BRIDGE"
  if [ -f "$K8S_RUN/ip_forward.orig" ]; then
    sysctl -qw "net.ipv4.ip_forward=$(cat "$K8S_RUN/ip_forward.orig")"
    rm -f "$K8S_RUN/ip_forward.orig"
  fi
}

kubernetes_ready() {
  k8s_apiserver_ready && k8s_node_ready
}

kubernetes_env() {
  echo "export KUBECONFIG=$K8S_KUBECONFIG"
  echo "export MOOC_K8S_NODE=$K8S_NODE_NAME"
  # Address under which pods reach the host's 127.0.0.1 services (same ports): PostgreSQL is
  # $MOOC_POD_HOST_IP:$MOOC_PG_PORT inside a pod.
  echo "export MOOC_POD_HOST_IP=$K8S_NODE_IP"
  echo "export MOOC_CONTAINERD_ADDRESS=$K8S_CONTAINERD_SOCK"
}

# Stops the node first (kubelet; every pod sandbox through the CRI, which tears down its network
# and mounts; containerd and its shims), cleans what is left on the host, then the control plane.
kubernetes_stop() {
  stop_daemon k8s-kubelet
  if is_running k8s-containerd && [ -x "$K8S_BIN/mooc-cri" ]; then
    "$K8S_BIN/mooc-cri" "$K8S_CONTAINERD_SOCK" clean || log "some pods could not be removed cleanly"
  fi
  stop_daemon k8s-containerd
  # Shims outlive containerd; each of ours left its pid in our state directory.
  local pidfile
  for pidfile in "$K8S_RUN"/containerd/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
    if [ -f "$pidfile" ]; then kill -KILL "$(cat "$pidfile")" 2>/dev/null || true; fi
  done
  # Unmount whatever is left under our run directory, deepest first.
  awk -v root="$K8S_RUN/" 'index($2, root) == 1 {print $2}' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  k8s_host_cleanup
  stop_daemon k8s-scheduler &
  stop_daemon k8s-controller-manager &
  wait
  stop_daemon kubernetes
  stop_daemon k8s-etcd
}
