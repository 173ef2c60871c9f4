#!/usr/bin/env bash
# On-call Redis restore (runbook: README.md "Restore runbook").
#
#   redis-restore.sh list          the complete backups of $BACKUP_PREFIX (default redis)
#   redis-restore.sh restore [ID]  fetch backup ID (default: the newest complete one),
#                                  check its sha256 and redis-check-rdb, and install
#                                  it as $REDIS_DATA_DIR/$REDIS_DBFILENAME
#
# Redis loads its data only at start-up, so a restore replaces the RDB file
# in the (stopped) server's data volume: scale the Redis StatefulSet to 0,
# run this in a pod that mounts its PVC, scale back to 1. The previous
# dump.rdb and appendonlydir are kept, renamed *.before-restore-<time>
# (an AOF directory would otherwise be loaded instead of the RDB).
# Requires RESTORE_CONFIRM=<REDIS_DATA_DIR>.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

PHASE=${1:-}
bk_init redis-restore "${PHASE:-none}"
case $PHASE in list | restore) ;; *) fail $EX_CONFIG "usage: redis-restore.sh list | restore [BACKUP_ID]" ;; esac
work_init
PREFIX=${BACKUP_PREFIX:-redis}
check_prefix "$PREFIX"
field_str prefix "$PREFIX"
dest_init

if [[ $PHASE == list ]]; then
  dest_check_readable
  list_backups "$PREFIX"
  field_list backups "${BK_IDS[@]}"
  field_list incomplete "${BK_INCOMPLETE[@]}"
  succeed
fi

WANT=${2:-${RESTORE_BACKUP:-}}
DATA=${REDIS_DATA_DIR:-}
DBFILE=${REDIS_DBFILENAME:-dump.rdb}
[[ -n $DATA ]] || fail $EX_CONFIG "set REDIS_DATA_DIR (the stopped Redis server's data directory)"
[[ $DBFILE =~ ^[A-Za-z0-9._-]+$ ]] || fail $EX_CONFIG "REDIS_DBFILENAME must be a plain file name"
[[ ${RESTORE_CONFIRM:-} == "$DATA" ]] ||
  fail $EX_CONFIG "this replaces $DATA/$DBFILE: stop Redis first, then set RESTORE_CONFIRM=$DATA to confirm"
[[ -d $DATA && -w $DATA ]] || fail $EX_TARGET "$DATA is not a writable directory"
field_str target "$DATA/$DBFILE"
redis_tools_init redis-check-rdb

stage fetch "${WANT:-newest} backup of $PREFIX from $BK_DEST_DESC"
fetch_backup "$PREFIX" rdb "$BK_RUN/fetched" "$WANT"
ID=$BK_FETCHED
stage verify "redis-check-rdb"
rdb_check "$BK_RUN/fetched/$ID.rdb" >"$BK_RUN/check.msg" || fail $EX_VERIFY "$(<"$BK_RUN/check.msg")"
field_num keys "$RDB_KEYS"

stage install "$ID as $DATA/$DBFILE"
set_now
suffix="before-restore-$BK_NOW_TS"
moved=()
tmp="$DATA/.$DBFILE.restore-tmp"
cp -- "$BK_RUN/fetched/$ID.rdb" "$tmp" 2>"$BK_RUN/cp.err" && sync -- "$tmp" ||
  { rm -f -- "$tmp"; fail $EX_TARGET "cannot write into $DATA: $(tail_of "$BK_RUN/cp.err")"; }
for old in "$DBFILE" appendonlydir; do
  if [[ -e $DATA/$old ]]; then
    mv -- "$DATA/$old" "$DATA/$old.$suffix" || { rm -f -- "$tmp"; fail $EX_TARGET "cannot move $DATA/$old aside"; }
    moved+=("$old.$suffix")
  fi
done
mv -- "$tmp" "$DATA/$DBFILE" || fail $EX_TARGET "cannot rename $tmp to $DATA/$DBFILE (previous files: ${moved[*]})"
sync -- "$DATA" 2>/dev/null || true
field_list moved_aside "${moved[@]}"
field_bool restored true
info "installed $ID as $DATA/$DBFILE; start Redis now (with appendonly no for the first start, see README)"
succeed
