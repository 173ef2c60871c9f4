# Sourced by scripts/ensure-node (its variables and helpers): the Postgres and Redis images of the
# real node, built here the way the official images are built, with no registry and no daemon
# (scripts/node/data-images/README.md: what they hold and where they differ from the official ones).
#
# mmdebstrap assembles each root filesystem from Debian bookworm packages (the host's apt sources):
# minbase (what debian:bookworm-slim is) plus the service's packages, its user uid/gid 999 created
# before any package is installed, and an entrypoint written here (data-images/*-entrypoint.sh).
# scripts/node/mkimage turns the tar into a docker-archive under the official image names the
# program's defaults use (postgres:<version>-bookworm, redis:<version>-bookworm), which `start`
# imports into the node's containerd; pods find them there and never pull.
#
# Cached by content: $CACHE/node-data-images-<hash of data-images/*.sh and this file>/; a warm run
# only checks that the archives are there.

DATA_IMAGES_SRC=$ROOT/scripts/node/data-images
data_images_hash() {
  (cd "$ROOT" && find scripts/node/data-images -type f -name '*.sh' | LC_ALL=C sort | xargs sha256sum
    sha256sum scripts/node/lib-images.sh) | sha256sum | cut -c1-12
}
DATA_IMAGES_DIR=$CACHE/node-data-images-$(data_images_hash)
# Debian bookworm's versions: PostgreSQL 15 (no 16 or 17 there), Redis 7.0
POSTGRES_MAJOR=15
REDIS_SERIES=7.0
POSTGRES_REFS="docker.io/library/postgres:$POSTGRES_MAJOR-bookworm docker.io/library/postgres:$POSTGRES_MAJOR"
REDIS_REFS="docker.io/library/redis:$REDIS_SERIES-bookworm docker.io/library/redis:$REDIS_SERIES"
POSTGRES_PACKAGES="postgresql-$POSTGRES_MAJOR,gosu,locales,libnss-wrapper,xz-utils,zstd,less"
REDIS_PACKAGES="redis-server,gosu,tzdata"
APT_SOURCES=/etc/apt/sources.list.d/debian.sources

# rootfs <name> <packages> <user> <home> <shell> <out.tar> [dpkg options…]: mmdebstrap of bookworm
# minbase + packages
rootfs() {
  local name=$1 packages=$2 user=$3 home=$4 shell=$5 out=$6 hook=$DATA_IMAGES_SRC/rootfs-hook.sh sources
  shift 6
  sources=$APT_SOURCES; [[ -f $sources ]] || sources=/etc/apt/sources.list
  # As debian:bookworm-slim: no manuals, no documentation but the copyright files. The timestamps
  # are clamped to SOURCE_DATE_EPOCH, so the same packages give the same tar.
  SOURCE_DATE_EPOCH=0 nice -n 10 mmdebstrap --variant=minbase --mode=root --format=tar --quiet \
    --aptopt='APT::Install-Recommends "false"' --aptopt='Acquire::Check-Valid-Until "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' --dpkgopt='path-exclude=/usr/share/groff/*' "$@" \
    --include="$packages" \
    --essential-hook="bash '$hook' user \"\$1\" $user $home $shell" \
    --customize-hook="bash '$hook' $name \"\$1\" '$DATA_IMAGES_SRC/$name-entrypoint.sh' '$out.versions'" \
    bookworm "$out" "$sources"
}

# data_image_spec <rootfs.tar> <refs> <config JSON>: a mkimage spec, one image per ref
data_image_spec() {
  local tar=$1 refs=$2 config=$3 r imgs=""
  for r in $refs; do imgs="$imgs${imgs:+, }{\"ref\": \"$r\", \"env\": []}"; done
  printf '{"layer": "%s", "config": %s, "images": [%s]}\n' "$tar" "$config" "$imgs"
}

version_of() { awk -v p="$1" '$1 == p {print $2}' "$2"; }

build_data_image() { # postgres|redis
  local name=$1 d=$DATA_IMAGES_DIR t log config v
  log=$CACHE/build/node-$name-image.log
  t=$(date +%s.%N)
  case $name in
    postgres) rootfs postgres "$POSTGRES_PACKAGES" postgres /var/lib/postgresql /bin/bash "$d/$name-rootfs.tar" >"$log" 2>&1 ;;
    # the slim base's translations too (the official postgres image keeps them for the server's messages)
    redis) rootfs redis "$REDIS_PACKAGES" redis /home/redis /bin/sh "$d/$name-rootfs.tar" --dpkgopt='path-exclude=/usr/share/locale/*' >"$log" 2>&1 ;;
  esac || { tail -n 20 "$log" >&2; die "building the $name root filesystem with mmdebstrap failed (log: $log)."; }
  # /run is a tmpfs while mmdebstrap runs the hooks, so the socket directory the official image has
  # (/var/run/postgresql → /run/postgresql, 3777, postgres) is added to the tar afterwards
  if [[ $name == postgres ]]; then
    local st; st=$(mktemp -d)
    install -d -o 999 -g 999 -m 3777 "$st/run/postgresql"
    tar --append -f "$d/$name-rootfs.tar" -C "$st" --numeric-owner --mtime=@0 ./run/postgresql
    rm -rf "$st"
  fi
  v=$d/$name-rootfs.tar.versions
  # The official images' ENV, PATH, WORKDIR, ENTRYPOINT, CMD, STOPSIGNAL, ports and volumes; the
  # versions are Debian's.
  case $name in
    postgres) config=$(printf '{"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/%s/bin", "GOSU_VERSION=%s", "LANG=en_US.utf8", "PG_MAJOR=%s", "PG_VERSION=%s", "PGDATA=/var/lib/postgresql/data"], "Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["postgres"], "StopSignal": "SIGINT", "ExposedPorts": {"5432/tcp": {}}, "Volumes": {"/var/lib/postgresql/data": {}}}' \
      "$POSTGRES_MAJOR" "$(version_of gosu "$v")" "$POSTGRES_MAJOR" "$(version_of postgresql-$POSTGRES_MAJOR "$v")")
      data_image_spec "$d/$name-rootfs.tar" "$POSTGRES_REFS" "$config" >"$d/$name.json" ;;
    redis) config=$(printf '{"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOSU_VERSION=%s", "REDIS_VERSION=%s"], "WorkingDir": "/data", "Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["redis-server"], "ExposedPorts": {"6379/tcp": {}}, "Volumes": {"/data": {}}}' \
      "$(version_of gosu "$v")" "$(version_of redis-server "$v" | sed -E 's/^[0-9]+://; s/-.*//')")
      data_image_spec "$d/$name-rootfs.tar" "$REDIS_REFS" "$config" >"$d/$name.json" ;;
  esac
  "$TOOLS_DIR/bin/mkimage" -spec "$d/$name.json" -out "$d/$name.tar" || die "writing the $name image failed (spec: $d/$name.json)."
  rm -f "$d/$name-rootfs.tar"
  printf '%s_seconds=%s\n%s_bytes=%s\n' "$name" "$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')" \
    "$name" "$(stat -c %s "$d/$name.tar")" >>"$d/.figures"
  say "built the $name image in $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1fs", b-a}') ($(( $(stat -c %s "$d/$name.tar") / 1048576 )) MiB; $(tr '\n' ' ' <"$v"))"
}

build_data_images() {
  built "$DATA_IMAGES_DIR" && return
  command -v mmdebstrap >/dev/null 2>&1 ||
    die "mmdebstrap is missing; install it with: scripts/ensure-node install (as root: apt-get install mmdebstrap)."
  [[ $(id -u) -eq 0 ]] || die "building the postgres and redis images needs root (mmdebstrap --mode=root); run scripts/ensure-node install as root."
  rm -rf "$DATA_IMAGES_DIR"; mkdir -p "$DATA_IMAGES_DIR"
  build_data_image redis
  build_data_image postgres
  { cat "$DATA_IMAGES_DIR/.figures"; cat "$DATA_IMAGES_DIR"/*.versions; printf 'built=%s\n' "$(date -u +%FT%TZ)"; } >"$DATA_IMAGES_DIR/.complete"
  # an older build's images (other sources) are no use any more
  find "$CACHE" -maxdepth 1 -name 'node-data-images-*' ! -path "$DATA_IMAGES_DIR" -exec rm -rf {} +
}

import_data_images() {
  local name
  for name in postgres redis; do
    ctr_ image import "$DATA_IMAGES_DIR/$name.tar" >/dev/null ||
      die "importing the $name image into containerd failed (log: $NRUN/containerd.log)."
  done
}
