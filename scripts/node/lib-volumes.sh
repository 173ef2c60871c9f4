# Sourced by scripts/ensure-node (its variables and helpers): PersistentVolumes on the real node.
#
# A pool of `local` PersistentVolumes, each a directory under $NRUN/volumes, in the StorageClass
# $STORAGE_CLASS (no provisioner, WaitForFirstConsumer: a claim binds when its pod is scheduled,
# to a volume of this node). `local` rather than `hostPath`: the kubelet applies the pod's fsGroup
# to a local volume (group 999, setgid, group-writable), as it does to a cloud disk, so a non-root
# Postgres initialises its data directory here as it would in production; a hostPath volume is
# mounted as it is. Reclaim policy Retain: a released volume keeps its data until `start` (each
# call) recycles it (volume deleted, directory emptied, volume created anew), so the pool refills
# between test runs. `stop` deletes the volumes, the StorageClass and the directories.
#
# Claims name the class (platform:postgres.storageClass, platform:redis.storageClass); it is not
# the default class, so no claim of the simulated nodes' pods ever waits for this node.

STORAGE_CLASS=platform-node-local
PV_COUNT=12
PV_CAPACITY=20Gi
PV_LABEL=platform.dev/node-volume
VOLUMES_DIR=$NRUN/volumes

pv_yaml() { # index
  cat <<YAML
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $NODE_NAME-pv-$1
  labels: {$PV_LABEL: "true"}
spec:
  capacity: {storage: $PV_CAPACITY}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: $STORAGE_CLASS
  volumeMode: Filesystem
  local: {path: $VOLUMES_DIR/pv-$1}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME]}]
YAML
}

ensure_volumes() { # the StorageClass, and every volume of the pool that is missing or released
  local phases i name phase yaml="" recycled=0
  kubectl_ apply -f - >/dev/null <<YAML || die "creating the StorageClass $STORAGE_CLASS failed."
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $STORAGE_CLASS
  labels: {$PV_LABEL: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
YAML
  phases=$(kubectl_ get pv -l "$PV_LABEL=true" -o 'jsonpath={range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}') ||
    die "listing the node's PersistentVolumes failed."
  mkdir -p "$VOLUMES_DIR"
  for i in $(seq 0 $((PV_COUNT - 1))); do
    name=$NODE_NAME-pv-$i
    phase=$(awk -v n="$name" '$1 == n {print $2}' <<<"$phases")
    case $phase in
      Bound|Available|Pending) continue ;;
      Released|Failed) kubectl_ delete pv "$name" --wait=true >/dev/null; recycled=$((recycled + 1)) ;;
    esac
    rm -rf "${VOLUMES_DIR:?}/pv-$i"
    mkdir -m 0755 "$VOLUMES_DIR/pv-$i"
    yaml+=$(pv_yaml "$i")$'\n'
  done
  [[ -z $yaml ]] || kubectl_ apply -f - <<<"$yaml" >/dev/null || die "creating the node's PersistentVolumes failed."
  [[ $recycled == 0 ]] || say "recycled $recycled released volume(s)"
}

# The volumes go with the node, data included: a claim still bound to one (a stack left deployed)
# is Lost afterwards. pv-protection would keep a bound volume Terminating for ever, so its
# finalizer is removed once nothing on the node uses it (the pods are drained by then).
remove_volumes() {
  local pv
  if api_ready >/dev/null 2>&1; then
    kubectl_ delete pv -l "$PV_LABEL=true" --wait=false >/dev/null 2>&1 || true
    for pv in $(kubectl_ get pv -l "$PV_LABEL=true" -o name 2>/dev/null); do
      kubectl_ patch "$pv" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
    done
    kubectl_ delete storageclass "$STORAGE_CLASS" --ignore-not-found >/dev/null 2>&1 || true
  fi
  rm -rf "$VOLUMES_DIR"
}
