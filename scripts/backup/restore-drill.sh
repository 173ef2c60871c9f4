#!/usr/bin/env bash
# Restore drill (monthly): fetch the NEWEST complete backup of one kind from
# the destination, check its sha256, restore it into an isolated scratch
# server and run the sanity checks recorded with the backup. Never touches a
# live server. Fails (non-zero) when the newest backup does not restore: it
# does not fall back to an older one. Contract: README.md.
#
#   restore-drill.sh run   pg|redis   fetch + check (one container; pvc)
#   restore-drill.sh fetch pg|redis   download into $BACKUP_WORK_DIR/drill-<kind>
#                                     (postgres/redis image for pvc, google-cloud-cli for gcs)
#   restore-drill.sh check pg|redis   check what fetch left there (postgres / redis image)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

PHASE=${1:-}
KIND=${2:-}
bk_init restore-drill "${PHASE:-none}"
case $PHASE in run | fetch | check) ;; *) fail $EX_CONFIG "usage: restore-drill.sh run|fetch|check pg|redis" ;; esac
case $KIND in
  pg) EXT=dump PREFIX=${BACKUP_PREFIX:-${PGDATABASE:+pg-$PGDATABASE}} ;;
  redis) EXT=rdb PREFIX=${BACKUP_PREFIX:-redis} ;;
  *) fail $EX_CONFIG "usage: restore-drill.sh run|fetch|check pg|redis (kind '$KIND')" ;;
esac
field_str kind "$KIND"
work_init
DRILL_DIR="$BACKUP_WORK_DIR/drill-$KIND"

do_fetch() {
  [[ -n $PREFIX ]] || fail $EX_CONFIG "set BACKUP_PREFIX (the backups' name prefix, e.g. pg-app)"
  check_prefix "$PREFIX"
  field_str prefix "$PREFIX"
  dest_init
  stage fetch "newest complete backup of $PREFIX from $BK_DEST_DESC"
  rm -rf -- "$DRILL_DIR"
  BK_NEWEST_ONLY=1 fetch_backup "$PREFIX" "$EXT" "$DRILL_DIR"
  chmod 0755 "$DRILL_DIR"
  chmod 0644 "$DRILL_DIR"/*
  info "fetched $BK_FETCHED"
}

check_pg() { # dir id
  pg_tools_init psql pg_restore initdb pg_ctl
  pg_verify_restore "$1/$2.dump" "$1/$2.manifest"
}

check_redis() { # dir id
  local dir=$1 id=$2 keys loaded
  redis_tools_init redis-server redis-cli redis-check-rdb
  stage verify "redis-check-rdb"
  rdb_check "$dir/$id.rdb" >"$BK_RUN/check.msg" || fail $EX_VERIFY "$(<"$BK_RUN/check.msg")"
  keys=$(manifest_get "$dir/$id.manifest" keys) || fail $EX_VERIFY "manifest has no key count"
  [[ $keys == "$RDB_KEYS" ]] || fail $EX_VERIFY "the RDB holds $RDB_KEYS keys, its manifest says $keys"
  stage restore "scratch redis-server loading the RDB"
  scratch_redis_start "$dir/$id.rdb"
  loaded=$(redis-cli -s "$SCRATCH_REDIS_SOCK" info keyspace | keyspace_sum) ||
    fail $EX_VERIFY "cannot count the keys of the scratch redis-server"
  # keys whose TTL ran out since the backup are not loaded: count them after
  # loading, so every key missing from the server is among them
  stage sanity "key count against the manifest"
  rdb_check "$dir/$id.rdb" >"$BK_RUN/check.msg" || fail $EX_VERIFY "$(<"$BK_RUN/check.msg")"
  if ((loaded > keys || loaded < keys - RDB_ALREADY_EXPIRED)); then
    fail $EX_VERIFY "scratch redis-server loaded $loaded keys, the backup recorded $keys ($RDB_ALREADY_EXPIRED expired since)"
  fi
  field_num keys "$keys"
  field_num loaded_keys "$loaded"
  field_num expired_since "$RDB_ALREADY_EXPIRED"
  field_bool sanity_ok true
}

do_check() {
  stage check "$DRILL_DIR"
  local -a shas=()
  shopt -s nullglob
  shas=("$DRILL_DIR"/*.sha256)
  shopt -u nullglob
  ((${#shas[@]} == 1)) || fail $EX_CONFIG "expected one fetched backup in $DRILL_DIR, found ${#shas[@]} (run 'fetch' first)"
  local id
  id=${shas[0]##*/}
  id=${id%.sha256}
  field_str backup "$id"
  [[ -f $DRILL_DIR/$id.$EXT ]] || fail $EX_CONFIG "$DRILL_DIR has no $id.$EXT"
  field_num bytes "$(stat -c %s -- "$DRILL_DIR/$id.$EXT")"
  local why
  why=$(check_sha256 "$DRILL_DIR" "$id") || fail $EX_CHECKSUM "backup $id: $why"
  field_str checksum "sha256:$(sha_of "$DRILL_DIR/$id.sha256" "$id.$EXT")"
  field_bool checksum_ok true
  field_bool restored false
  if [[ $KIND == pg ]]; then check_pg "$DRILL_DIR" "$id"; else check_redis "$DRILL_DIR" "$id"; fi
  field_bool restored true
  info "drill passed for $id"
}

case $PHASE in
  fetch) do_fetch ;;
  check) do_check ;;
  run)
    do_fetch
    do_check
    ;;
esac
succeed
