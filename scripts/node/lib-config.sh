# Sourced by scripts/ensure-node (its variables and helpers): the node's certificates and the
# configs of containerd, CNI, the kubelet and kube-proxy.

# --- configuration ------------------------------------------------------------------------------
node_pki() { # client certificates signed by the cluster's CA: the kubelet as the node, kube-proxy
  local d=$NRUN/pki ca; ca=$(sha256sum "$PKI/ca.crt" | cut -c1-16)
  [[ -f $d/.complete && $(cat "$d/.complete") == "$ca" ]] && return
  rm -rf "$d"; mkdir -p "$d"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$d/client.ext"
  client() { # file CN O
    openssl req -newkey rsa:2048 -nodes -keyout "$d/$1.key" -out "$d/$1.csr" -subj "/O=$3/CN=$2" 2>/dev/null
    openssl x509 -req -in "$d/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -CAserial "$d/ca.srl" \
      -out "$d/$1.crt" -days 3650 -extfile "$d/client.ext" 2>/dev/null
    cat >"$d/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: platform-local
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: $PKI/ca.crt}
users:
- name: $1
  user: {client-certificate: $d/$1.crt, client-key: $d/$1.key}
contexts:
- name: platform-local
  context: {cluster: platform-local, user: $1}
current-context: platform-local
KC
  }
  # the Node authorizer lets system:node:<name> register and update its own Node and pods
  client kubelet "system:node:$NODE_NAME" system:nodes
  # bound to system:node-proxier by the cluster's bootstrap RBAC
  client kube-proxy system:kube-proxy system:node-proxier
  echo "$ca" >"$d/.complete"
}

write_configs() {
  mkdir -p "$NRUN/cni/net.d" "$NRUN/kubelet" "$NRUN/pod-logs"
  cat >"$NRUN/containerd.toml" <<TOML
# written by scripts/ensure-node
version = 2
root = "$NRUN/containerd/root"
state = "$NRUN/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$NRUN/containerd.sock"
[ttrpc]
  address = "$NRUN/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$PAUSE_IMAGE"
    # this machine lacks CAP_SYS_RESOURCE: without the clamp, oom_score_adj -998 fails every sandbox
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "$NRUN/runc"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$CNI_BIN"
      conf_dir = "$NRUN/cni/net.d"
      max_conf_num = 1
  [plugins."io.containerd.internal.v1.opt"]
    path = "$NRUN/containerd/opt"
TOML
  # No ipMasq: pods reach each other, Services and the host, not the outside.
  cat >"$NRUN/cni/net.d/10-platform-node.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "platform-node", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$NRUN/cni/ipam"}}]}
JSON
  cat >"$NRUN/kubelet.yaml" <<YAML
# written by scripts/ensure-node
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$NRUN/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP
failCgroupV1: false
failSwapOn: false
podLogsDir: $NRUN/pod-logs
volumePluginDir: $NRUN/kubelet/volume-plugins
# the node's CoreDNS (lib-dns.sh) behind the kube-dns Service; no host resolv.conf: pods get no
# nameserver or search domain of the host's (they have no egress)
clusterDNS: [$DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: ""
registerWithTaints: [{key: $NODE_TAINT_KEY, value: "true", effect: NoSchedule}]
# images are imported, never pulled: never collect them, and no disk-pressure eviction on a busy disk
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
makeIPTablesUtilChains: false
serializeImagePulls: false
maxPods: 60
YAML
  cat >"$NRUN/kube-proxy.yaml" <<YAML
# written by scripts/ensure-node
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NRUN/pki/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
clusterCIDR: $POD_CIDR
# NodePorts on loopback only (kube-proxy sets route_localnet for it); never on the host's interfaces
nodePortAddresses: ["127.0.0.0/8"]
iptables: {localhostNodePorts: true, masqueradeAll: false}
# leave the host's conntrack limits and timeouts alone
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
}
