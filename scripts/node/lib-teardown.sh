# Sourced by scripts/ensure-node (its variables and helpers): the teardown steps `stop` runs, in
# order, so that nothing the node created stays on the host.

# --- teardown -----------------------------------------------------------------------------------
netns_left() { ls /run/netns/cni-* >/dev/null 2>&1; }

drain() { # while the kubelet lives: its pods go the normal way, each sandbox's network by CNI DEL
  api_ready >/dev/null 2>&1 || { say "the control plane does not answer: no drain, the node's pods are removed locally"; return; }
  kubectl_ get node "$NODE_NAME" >/dev/null 2>&1 || return 0
  kubectl_ cordon "$NODE_NAME" >/dev/null 2>&1 || true
  pid_alive kubelet || return 0
  kubectl_ delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" --grace-period=1 --wait=false >/dev/null 2>&1 || true
  local deadline=$(( $(date +%s) + 60 ))
  while [[ $(date +%s) -lt $deadline ]]; do
    [[ -z $(kubectl_ get pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" -o name 2>/dev/null) ]] && ! netns_left && break
    sleep 0.5
  done
  say "drained node $NODE_NAME at $(elapsed)"
}

remove_containers() { # what the kubelet left: every task and container of the node's containerd
  pid_alive containerd || return 0
  local id
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  sleep 0.5
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$id" >/dev/null 2>&1 || true; done
}

kill_cgroup_procs() { # any process still in the node's cgroups (containers whose shim is gone)
  local f pid
  for f in $(find /sys/fs/cgroup/pids/$CGROUP /sys/fs/cgroup/memory/$CGROUP -name cgroup.procs 2>/dev/null); do
    for pid in $(cat "$f" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  done
}

stop_shims() { # the shims of this node's containerd (found by its socket, killed by PID)
  local p cmd
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    [[ $cmd == *containerd-shim* && $cmd == *"$NRUN/containerd.sock"* ]] && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
}

unmount_all() { # deepest first: pod volumes, rootfs overlays, sandboxes' shm, the kubelet root, netns
  local m
  for m in $(awk '{print $2}' /proc/self/mounts | grep -E "^($NRUN/|/run/netns/cni-|/run/containerd/|/var/lib/kubelet/)" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "cannot unmount $m"
  done
  while awk '{print $2}' /proc/self/mounts | grep -qx "$NRUN/kubelet"; do umount "$NRUN/kubelet" 2>/dev/null || umount -l "$NRUN/kubelet"; done
  rm -f /run/netns/cni-* 2>/dev/null || true
}

remove_chains() { # kube-proxy --cleanup leaves some (KUBE-FIREWALL, KUBE-MARK-MASQ, canaries); CNI's too
  local ipt table rule chain
  for ipt in iptables ip6tables; do
    for table in filter nat mangle; do
      { "$ipt" -t "$table" -S 2>/dev/null || true; } | awk '$1=="-A" && $2 !~ /^(KUBE-|CNI-)/ && / -j (KUBE-|CNI-)/' |
        while read -r rule; do eval "\"\$ipt\" -t \"\$table\" ${rule/-A/-D}" 2>/dev/null || true; done
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1=="-N" && ($2 ~ /^(KUBE-|CNI-)/) {print $2}'); do
        "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1=="-N" && ($2 ~ /^(KUBE-|CNI-)/) {print $2}'); do
        "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

flush_conntrack() { # the kernel's connection tracking of pod addresses (a next start reuses them)
  local prefix=${NODE_IP%.*} ip
  conntrack -D -s "$POD_CIDR" >/dev/null 2>&1 || true
  conntrack -D -d "$POD_CIDR" >/dev/null 2>&1 || true
  # NodePort connections from 127.0.0.1 carry the pod only in their reply direction (no CIDR there)
  for ip in $(conntrack -L 2>/dev/null | grep -oE "src=${prefix//./\.}\.[0-9]+" | sort -u | cut -d= -f2); do
    conntrack -D -r "$ip" >/dev/null 2>&1 || true
  done
}

remove_cgroups() {
  local d
  for d in $(cgroup_dirs); do
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [[ -d $d ]] && say "cannot remove the cgroup $d (processes left?)"
  done
  return 0
}

restore_host() {
  [[ -f $NRUN/host-before ]] || return 0
  local kind a b p
  while read -r kind a b; do
    [[ $kind == sysctl && -f /proc/sys/$a ]] && { echo "$b" >"/proc/sys/$a" 2>/dev/null || say "cannot restore sysctl $a=$b"; }
  done <"$NRUN/host-before"
  for p in $HOST_PATHS; do
    grep -qx "path $p" "$NRUN/host-before" && continue
    [[ $p == /var/log/containers ]] && [[ -d $p ]] && find "$p" -maxdepth 1 -type l -lname "$NRUN/*" -delete
    [[ $p == /var/log/containers ]] && { rmdir "$p" 2>/dev/null || true; continue; }
    rm -rf "$p"
  done
  rm -f "$NRUN/host-before"
}
