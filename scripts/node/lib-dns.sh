# Sourced by scripts/ensure-node (its variables and helpers): cluster DNS for the real node.
#
# CoreDNS runs as a host process beside the kubelet, with only the plugins a cluster's DNS needs
# (bind, kubernetes, cache, errors, health, ready, loadbalance) and the control plane's kubeconfig. It
# listens on the bridge address ($NODE_IP:53), the only host address pods reach; the Service
# kube-system/kube-dns holds the documented cluster DNS address ($DNS_IP, the tenth of the Service
# range 10.96.0.0/16, as kubeadm chooses it) with an EndpointSlice of its own pointing at the
# bridge, so kube-proxy carries a pod's query from $DNS_IP to CoreDNS. The kubelet writes
# `nameserver $DNS_IP` and the search path `<namespace>.svc.$CLUSTER_DOMAIN svc.$CLUSTER_DOMAIN
# $CLUSTER_DOMAIN` into every ClusterFirst pod. Names outside the cluster get SERVFAIL at once:
# there is no upstream (pods have no egress here).

COREDNS_MODULE=github.com/coredns/coredns
# v1.15.0, the newest the proxy serves (its go.mod wants Go >= 1.26.0; client-go v0.37 speaks to
# the 1.33 API server through the stable discovery.k8s.io/v1 EndpointSlices it watches).
COREDNS_VERSION=1.15.0
COREDNS_PLUGINS="bind errors health ready kubernetes cache loadbalance"
COREDNS_DIR=$CACHE/coredns-v$COREDNS_VERSION
DNS_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
DNS_HEALTH_PORT=$((COMPONENT_PORT - 11)) # 10246; kwok's is 10 below the component port
DNS_READY_PORT=$((COMPONENT_PORT - 12))  # 10245
DNS_SLICE=kube-dns-platform-node

# A wrapper module (as for kubelet: scripts/cluster/k8s-build.sh) whose main imports only the
# plugins above: the full plugin set would pull in every cloud provider's SDK.
build_coredns() {
  built "$COREDNS_DIR" && return
  need_go
  local d=$CACHE/build/coredns log t p
  rm -rf "$d" "$COREDNS_DIR"; mkdir -p "$d" "$COREDNS_DIR/bin"; log=$d/build.log
  say "building CoreDNS v$COREDNS_VERSION (plugins: $COREDNS_PLUGINS); about 1 min with the Go caches warm, 3-5 min cold..."
  t=$(date +%s)
  printf 'module platform.local/wrap/coredns\n\ngo 1.26.0\n\nrequire %s v%s\n' "$COREDNS_MODULE" "$COREDNS_VERSION" >"$d/go.mod"
  { printf '// CoreDNS with the plugins of a cluster DNS only (scripts/node/lib-dns.sh).\npackage main\n\nimport (\n'
    printf '\t"%s/coremain"\n\n' "$COREDNS_MODULE"
    for p in $COREDNS_PLUGINS; do printf '\t_ "%s/plugin/%s"\n' "$COREDNS_MODULE" "$p"; done
    printf ')\n\nfunc main() { coremain.Run() }\n'; } >"$d/main.go"
  (cd "$d" && goenv go mod tidy >"$log" 2>&1 &&
    CGO_ENABLED=0 goenv go build -trimpath -ldflags "-s -w" -o "$COREDNS_DIR/bin/coredns" . >>"$log" 2>&1) ||
    { tail -n 15 "$log" >&2; die "building CoreDNS v$COREDNS_VERSION failed (log: $log)."; }
  printf 'version=%s\nplugins=%s\nbuild_seconds=%s\ngo=%s\nbuilt=%s\n' "$COREDNS_VERSION" "$COREDNS_PLUGINS" \
    "$(( $(date +%s) - t ))" "$(go env GOVERSION)" "$(date -u +%FT%TZ)" >"$COREDNS_DIR/.complete"
  say "built CoreDNS v$COREDNS_VERSION in $(( $(date +%s) - t ))s"
}

write_dns_config() {
  cat >"$NRUN/Corefile" <<COREFILE
# written by scripts/ensure-node
.:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:$DNS_HEALTH_PORT
    ready 127.0.0.1:$DNS_READY_PORT
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_FILE platform-local
        pods insecure
        ttl 5
    }
    cache 5
    loadbalance
}
COREFILE
  cat >"$NRUN/kube-dns.yaml" <<YAML
# written by scripts/ensure-node: the cluster DNS address, served by the host's CoreDNS
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS, app.kubernetes.io/managed-by: platform-ensure-node}
spec:
  clusterIP: $DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $DNS_SLICE
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: platform-ensure-node}
addressType: IPv4
endpoints:
- addresses: [$NODE_IP]
  conditions: {ready: true}
  nodeName: $NODE_NAME
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
YAML
}

dns_ready() { curl -sf --max-time 2 "http://127.0.0.1:$DNS_READY_PORT/ready"; }

start_dns() { # after the bridge (CoreDNS binds its address) and before the kubelet (pods' resolv.conf)
  local ip
  ip=$(kubectl_ get service -n kube-system kube-dns -o 'jsonpath={.spec.clusterIP}' 2>/dev/null || true)
  [[ -z $ip || $ip == "$DNS_IP" ]] ||
    die "the Service kube-system/kube-dns exists with clusterIP $ip; the real node's DNS needs $DNS_IP (delete that Service first)."
  kubectl_ apply -f "$NRUN/kube-dns.yaml" >/dev/null || die "creating the Service kube-system/kube-dns ($DNS_IP) failed."
  if ! pid_alive coredns; then
    spawn coredns "$COREDNS_DIR/bin/coredns" -conf "$NRUN/Corefile"
    wait_for "CoreDNS" 30 dns_ready
    say "CoreDNS ready at $(elapsed) ($NODE_IP:53, Service kube-system/kube-dns $DNS_IP)"
  fi
}

stop_dns() {
  stop_pid coredns
  api_ready >/dev/null 2>&1 || return 0
  kubectl_ delete endpointslice -n kube-system "$DNS_SLICE" --ignore-not-found >/dev/null 2>&1 || true
  if [[ $(kubectl_ get service -n kube-system kube-dns -o 'jsonpath={.metadata.labels.app\.kubernetes\.io/managed-by}' 2>/dev/null) == platform-ensure-node ]]; then
    kubectl_ delete service -n kube-system kube-dns --ignore-not-found >/dev/null 2>&1 && say "deleted the Service kube-system/kube-dns"
  fi
  return 0
}
