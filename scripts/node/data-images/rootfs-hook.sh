#!/usr/bin/env bash
# mmdebstrap hooks for the data images (scripts/node/lib-images.sh runs mmdebstrap with them):
#   rootfs-hook.sh user <rootfs> <name> <home> <shell>   (essential hook) the service user and its
#       group, uid/gid 999, before any package is installed, so the Debian package finds it and the
#       files it installs belong to 999, as in the official images
#   rootfs-hook.sh postgres|redis <rootfs> <entrypoint> <versions file>   (customize hook) the rest
#       of the image; writes the package versions into <versions file>
set -euo pipefail

in_root() { chroot "$ROOTFS" "$@"; } # inside the image: absolute symlinks (/var/run → /run) resolve there

user() { # name home shell
  local name=$1 home=$2 shell=$3
  grep -q "^$name:" "$ROOTFS/etc/passwd" && { echo "rootfs-hook: $name exists already" >&2; exit 1; }
  echo "$name:x:999:" >>"$ROOTFS/etc/group"
  echo "$name:x:999:999::$home:$shell" >>"$ROOTFS/etc/passwd"
  # the shadow files appear when the passwd package is configured (pwconv, grpconv add the entries)
  [[ ! -f $ROOTFS/etc/gshadow ]] || echo "$name:*::" >>"$ROOTFS/etc/gshadow"
  [[ ! -f $ROOTFS/etc/shadow ]] || echo "$name:*:0:0:99999:7:::" >>"$ROOTFS/etc/shadow"
}

versions() { # package…: "package version" lines
  in_root dpkg-query -W -f '${Package} ${Version}\n' "$@"
}

postgres() { # entrypoint versions-file
  # the main cluster the package created at install: the entrypoint initialises $PGDATA instead
  rm -rf "$ROOTFS/etc/postgresql/15/main" "$ROOTFS/var/lib/postgresql/15"
  sed -ri 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' "$ROOTFS/etc/postgresql-common/createcluster.conf"
  # en_US.UTF-8, the official image's LANG (en_US.utf8): databases are UTF-8 by default
  echo 'en_US.UTF-8 UTF-8' >>"$ROOTFS/etc/locale.gen"
  in_root locale-gen >/dev/null
  in_root locale -a | grep -qx en_US.utf8
  # every new cluster listens on all addresses, or no other pod could connect
  local sample=$ROOTFS/usr/share/postgresql/15/postgresql.conf.sample
  sed -ri "s/^#?(listen_addresses)[[:space:]]*=[[:space:]]*[^[:space:]]+.*/\1 = '*'/" "$sample"
  grep -q "^listen_addresses = '\*'" "$sample"
  in_root install -d -o postgres -g postgres -m 1777 /var/lib/postgresql
  in_root install -d -o postgres -g postgres -m 1777 /var/lib/postgresql/data
  in_root install -d -m 755 /docker-entrypoint-initdb.d
  install -m 755 "$1" "$ROOTFS/usr/local/bin/docker-entrypoint.sh"
  [[ $(in_root id -u postgres) == 999 && $(in_root id -g postgres) == 999 ]]
  versions postgresql-15 gosu libnss-wrapper locales >"$2"
}

redis() { # entrypoint versions-file
  in_root install -d -o redis -g redis -m 755 /data
  install -m 755 "$1" "$ROOTFS/usr/local/bin/docker-entrypoint.sh"
  [[ $(in_root id -u redis) == 999 && $(in_root id -g redis) == 999 ]]
  versions redis-server redis-tools gosu tzdata >"$2"
}

what=$1 ROOTFS=$2; shift 2
case $what in
  user) user "$@" ;;
  postgres) postgres "$@" ;;
  redis) redis "$@" ;;
  *) echo "usage: rootfs-hook.sh user|postgres|redis <rootfs> …" >&2; exit 2 ;;
esac
