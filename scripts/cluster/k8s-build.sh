# k8s-build.sh: sourced by scripts/ensure-cluster and scripts/ensure-node, so the control plane and
# the node's kubelet and kube-proxy are built from the same release in the same way. The caller
# defines say, die and goenv, and sets CACHE.
#
# k8s.io/kubernetes replaces its staging modules with ./staging/… paths, which a dependent module
# cannot follow (and `go install` refuses modules with replace directives): a wrapper module maps
# each one to the published module of the same release.

# Versions. The Go module proxy serves k8s.io/kubernetes v1.33.13 with every k8s.io/* staging module
# at v0.33.13; v1.32's staging set is incomplete there (several modules refused), so 1.33 it is.
K8S_VERSION=1.33.13
K8S_STAGING=0.33.13

# k8s_build <name> <out dir> <commands…>: go build k8s.io/kubernetes/cmd/<command> into <out dir>/bin
# through the wrapper module in $CACHE/build/<name>; <out dir>/.complete records the build.
k8s_build() {
  local name=$1 out=$2; shift 2
  local cmds="$*" d=$CACHE/build/$name log t gomod c
  rm -rf "$d" "$out"; mkdir -p "$d" "$out/bin"; log=$d/build.log
  t=$(date +%s)
  goenv go mod download k8s.io/kubernetes@v$K8S_VERSION >"$log" 2>&1 ||
    { tail -n 5 "$log" >&2; die "k8s.io/kubernetes@v$K8S_VERSION cannot be fetched from the Go module proxy (log: $log)."; }
  gomod=$(goenv go mod download -json k8s.io/kubernetes@v$K8S_VERSION | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).GoMod))')
  {
    printf 'module platform.local/wrap/kubernetes\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$K8S_VERSION"
    grep -E '^\s*k8s.io/[^ ]+ => ./staging' "$gomod" | awk '{print $1}' | grep -v sample- |
      while read -r m; do printf '\t%s => %s v%s\n' "$m" "$m" "$K8S_STAGING"; done
    printf ')\n'
  } >"$d/go.mod"
  { printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in $cmds; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'; } >"$d/tools.go"
  # Clients parse the server's version: stamp it, as the release build does.
  local ldf="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=${K8S_VERSION%%.*} -X $p.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
    ldf="$ldf -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$d" && goenv go mod tidy >>"$log" 2>&1 &&
    goenv go build -trimpath -ldflags "$ldf" -o "$out/bin/" $(for c in $cmds; do echo "k8s.io/kubernetes/cmd/$c"; done) >>"$log" 2>&1) ||
    { tail -n 15 "$log" >&2; die "building kubernetes v$K8S_VERSION ($cmds) failed (log: $log)."; }
  printf 'version=%s\ncommands=%s\nbuild_seconds=%s\ngo=%s\nbuilt=%s\n' "$K8S_VERSION" "$cmds" "$(( $(date +%s) - t ))" \
    "$(go env GOVERSION)" "$(date -u +%FT%TZ)" >"$out/.complete"
}
