#!/usr/bin/env bash
# Redis backup: an RDB snapshot streamed from the live server with
# `redis-cli --rdb` (a replica-style full sync: the server forks and sends a
# point-in-time RDB), checked with redis-check-rdb (reads the whole file and
# its CRC64), sha256, then store + GFS prune. Contract: README.md.
#
#   redis-backup.sh run     snapshot + check + store + prune (one container; pvc)
#   redis-backup.sh dump    snapshot + check into $BACKUP_WORK_DIR/staged (redis image)
#   redis-backup.sh store   store the staged backup + prune (redis image for pvc,
#                           google-cloud-cli image for gcs)
#   redis-backup.sh prune   apply the retention policy only
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

PHASE=${1:-}
bk_init redis-backup "${PHASE:-none}"
case $PHASE in
  run | dump | store | prune) ;;
  *) fail $EX_CONFIG "usage: redis-backup.sh run|dump|store|prune (got '${PHASE}')" ;;
esac
work_init

PREFIX=${BACKUP_PREFIX:-redis}
if [[ -z ${BACKUP_PREFIX:-} && $PHASE == store && -f $(staged_dir)/meta ]]; then
  PREFIX=$(manifest_get "$(staged_dir)/meta" prefix) || PREFIX=redis
fi
check_prefix "$PREFIX"
field_str prefix "$PREFIX"

# rcli ARGS...: redis-cli against the live server. The password is read by
# --askpass from the mounted file on stdin: never in argv or the environment.
rcli() {
  local -a a=(-h "$REDIS_HOST" -p "$REDIS_PORT")
  [[ -n ${REDIS_USER:-} ]] && a+=(--user "$REDIS_USER")
  if [[ -n ${REDIS_PASSWORD_FILE:-} ]]; then
    redis-cli "${a[@]}" --askpass "$@" <"$REDIS_PASSWORD_FILE"
  else
    redis-cli "${a[@]}" "$@" </dev/null
  fi
}

dump_and_check() {
  redis_tools_init redis-cli redis-check-rdb
  [[ -n ${REDIS_HOST:-} ]] || fail $EX_CONFIG "REDIS_HOST is not set"
  REDIS_PORT=${REDIS_PORT:-6379}
  need_int REDIS_PORT "$REDIS_PORT"
  [[ -z ${REDISCLI_AUTH:-} ]] ||
    fail $EX_CONFIG "REDISCLI_AUTH is set; mount the password as a file and set REDIS_PASSWORD_FILE instead"
  if [[ -n ${REDIS_PASSWORD_FILE:-} && ! -r $REDIS_PASSWORD_FILE ]]; then
    fail $EX_CONFIG "REDIS_PASSWORD_FILE $REDIS_PASSWORD_FILE is not readable"
  fi
  set_now
  local id out="$BK_RUN/out" r=$BK_RUN reply
  new_backup_id "$PREFIX"
  id=$BK_NEW_ID
  field_str backup "$id"
  field_bool verified false
  field_str source "$REDIS_HOST:$REDIS_PORT"
  mkdir -p "$out"

  stage connect "PING $REDIS_HOST:$REDIS_PORT"
  reply=$(rcli ping 2>&1) || true
  reply=${reply//$'\r'/}
  [[ $reply == PONG ]] || fail $EX_SOURCE "cannot reach or authenticate to Redis at $REDIS_HOST:$REDIS_PORT: ${reply//$'\n'/ }"
  local live_keys
  live_keys=$(rcli info keyspace 2>/dev/null | keyspace_sum) || live_keys=

  stage snapshot "redis-cli --rdb"
  rcli --rdb "$out/$id.rdb" >"$r/rdb.out" 2>&1 ||
    fail $EX_SOURCE "redis-cli --rdb failed: $(grep -v '^sending\|^SYNC sent' "$r/rdb.out" | tail -n 3 | tr '\n' ' ')"
  [[ -f $out/$id.rdb ]] || fail $EX_SOURCE "redis-cli --rdb wrote no file"
  local bytes
  bytes=$(stat -c %s -- "$out/$id.rdb")
  field_num bytes "$bytes"

  stage verify "redis-check-rdb"
  rdb_check "$out/$id.rdb" >"$r/check.msg" || fail $EX_VERIFY "$(<"$r/check.msg")"
  {
    printf 'format\tredis-backup-manifest-v1\n'
    printf 'backup\t%s\n' "$id"
    printf 'created\t%s\n' "$BK_NOW_ISO"
    printf 'keys\t%s\n' "$RDB_KEYS"
    printf 'expires\t%s\n' "$RDB_EXPIRES"
    printf 'live_keys\t%s\n' "$live_keys"
  } >"$out/$id.manifest"
  write_sha256 "$out" "$id" "$id.rdb"
  field_str checksum "sha256:$(sha_of "$out/$id.sha256" "$id.rdb")"
  field_num keys "$RDB_KEYS"
  field_bool verified true

  local sd new
  sd=$(staged_dir)
  new="$sd.new"
  rm -rf -- "$new"
  mkdir -p "$new"
  mv -- "$out/$id.rdb" "$out/$id.manifest" "$out/$id.sha256" "$new/"
  printf 'id\t%s\nprefix\t%s\next\trdb\nstart\t%s\n' "$id" "$PREFIX" "$BK_START" >"$new/meta"
  chmod 0755 "$new"
  chmod 0644 "$new"/*
  rm -rf -- "$sd"
  mv -- "$new" "$sd"
  info "verified $id ($bytes bytes, $RDB_KEYS keys)"
}

case $PHASE in
  run)
    dest_init
    dest_check_writable "$PREFIX"
    dump_and_check
    store_staged "$PREFIX" rdb
    ;;
  dump)
    rm -rf -- "$(staged_dir)"
    dump_and_check
    ;;
  store)
    dest_init
    store_staged "$PREFIX" rdb
    ;;
  prune)
    dest_init
    set_now
    stage prune
    prune "$PREFIX" || fail $EX_PRUNE "could not delete: $BK_PRUNE_FAILED"
    ;;
esac
succeed
