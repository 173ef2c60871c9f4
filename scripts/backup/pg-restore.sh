#!/usr/bin/env bash
# On-call PostgreSQL restore (runbook: README.md "Restore runbook").
#
#   pg-restore.sh list          the complete backups of $BACKUP_PREFIX, newest first
#   pg-restore.sh restore [ID]  fetch backup ID (default: the newest complete one),
#                               check its sha256 and restore it into
#                               $RESTORE_TARGET_DB on the server given by PGHOST/PGPORT/PGUSER
#
# RESTORE_MODE=new (default): the target database must not exist; it is
#   created (TEMPLATE template0, the backup's encoding) and filled in one
#   transaction; on failure it is dropped again.
# RESTORE_MODE=replace: restore over an existing database with
#   pg_restore --clean --if-exists in one transaction (all or nothing);
#   requires RESTORE_CONFIRM=<target database name>.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

PHASE=${1:-}
bk_init pg-restore "${PHASE:-none}"
case $PHASE in list | restore) ;; *) fail $EX_CONFIG "usage: pg-restore.sh list | restore [BACKUP_ID]" ;; esac
work_init
PREFIX=${BACKUP_PREFIX:-}
[[ -n $PREFIX ]] || fail $EX_CONFIG "set BACKUP_PREFIX (the backups' name prefix, e.g. pg-app)"
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
TARGET=${RESTORE_TARGET_DB:-}
MODE=${RESTORE_MODE:-new}
MAINT_DB=${RESTORE_MAINTENANCE_DB:-postgres}
[[ -n $TARGET ]] || fail $EX_CONFIG "set RESTORE_TARGET_DB (the database to restore into)"
case $MODE in
  new) ;;
  replace)
    [[ ${RESTORE_CONFIRM:-} == "$TARGET" ]] ||
      fail $EX_CONFIG "RESTORE_MODE=replace overwrites database '$TARGET': set RESTORE_CONFIRM=$TARGET to confirm"
    ;;
  *) fail $EX_CONFIG "RESTORE_MODE must be 'new' or 'replace', got '$MODE'" ;;
esac
field_str target "${PGHOST:-local socket}:${PGPORT:-5432}/$TARGET"
field_str mode "$MODE"

[[ -z ${PGPASSWORD:-} ]] ||
  fail $EX_CONFIG "PGPASSWORD is set; mount the password as a file and set BACKUP_PG_PASSWORD_FILE instead"
if [[ -n ${BACKUP_PG_PASSWORD_FILE:-} ]]; then
  [[ -r $BACKUP_PG_PASSWORD_FILE ]] || fail $EX_CONFIG "BACKUP_PG_PASSWORD_FILE $BACKUP_PG_PASSWORD_FILE is not readable"
  pw=$(<"$BACKUP_PG_PASSWORD_FILE")
  pw=${pw//\\/\\\\}
  pw=${pw//:/\\:}
  printf '*:*:*:*:%s\n' "$pw" >"$BK_RUN/pgpass"
  unset pw
  export PGPASSFILE="$BK_RUN/pgpass"
elif [[ -n ${PGPASSFILE:-} ]]; then
  cat -- "$PGPASSFILE" >"$BK_RUN/pgpass" || fail $EX_CONFIG "PGPASSFILE $PGPASSFILE is not readable"
  export PGPASSFILE="$BK_RUN/pgpass"
fi
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10} PGAPPNAME=${PGAPPNAME:-pg-restore}
pg_tools_init psql pg_restore

stage fetch "${WANT:-newest} backup of $PREFIX from $BK_DEST_DESC"
fetch_backup "$PREFIX" dump "$BK_RUN/fetched" "$WANT"
ID=$BK_FETCHED
DUMP="$BK_RUN/fetched/$ID.dump"
MANIFEST="$BK_RUN/fetched/$ID.manifest"

tpsql() { # db args...: psql on the target server
  local db=$1
  shift
  psql -X -q -w -v ON_ERROR_STOP=1 -d "$db" "$@"
}

stage target "checking $TARGET on ${PGHOST:-socket}:${PGPORT:-5432}"
# (psql interpolates :'db' only in SQL read from stdin or a file, not in -c)
exists=$(tpsql "$MAINT_DB" -A -t -v db="$TARGET" <<<"SELECT count(*) FROM pg_database WHERE datname = :'db';" 2>"$BK_RUN/t.err") ||
  fail $EX_TARGET "cannot query the target server: $(tail_of "$BK_RUN/t.err" 3)"
if [[ $MODE == new && $exists != 0 ]]; then
  fail $EX_TARGET "database $TARGET already exists; choose a new name or use RESTORE_MODE=replace"
fi
if [[ $MODE == replace && $exists == 0 ]]; then
  fail $EX_TARGET "database $TARGET does not exist (RESTORE_MODE=replace restores over an existing database)"
fi

restore_args=(--no-password --exit-on-error --single-transaction)
if [[ ${RESTORE_NO_OWNER:-false} == true ]]; then restore_args+=(--no-owner --no-privileges); fi
created=0
if [[ $MODE == new ]]; then
  enc=$(manifest_get "$MANIFEST" encoding) || enc=UTF8
  [[ $enc =~ ^[A-Za-z0-9_]+$ ]] || fail $EX_VERIFY "bad encoding '$enc' in the manifest"
  tpsql "$MAINT_DB" -v db="$TARGET" <<<"CREATE DATABASE :\"db\" TEMPLATE template0 ENCODING '$enc';" 2>"$BK_RUN/t.err" ||
    fail $EX_TARGET "cannot create database $TARGET: $(tail_of "$BK_RUN/t.err" 3)"
  created=1
else
  restore_args+=(--clean --if-exists)
fi

stage restore "pg_restore ${restore_args[*]} $ID into $TARGET"
if ! pg_restore "${restore_args[@]}" -d "$TARGET" "$DUMP" 2>"$BK_RUN/restore.err"; then
  msg="pg_restore into $TARGET failed (nothing was changed: one transaction): $(tail_of "$BK_RUN/restore.err" 3)"
  if ((created)); then
    tpsql "$MAINT_DB" -v db="$TARGET" <<<'DROP DATABASE :"db";' 2>/dev/null || msg+="; could not drop the new empty database $TARGET"
  fi
  fail $EX_TARGET "$msg"
fi
field_bool restored true

_target_counts() { tpsql "$TARGET" -A -t -F $'\t' -c "$PG_LO_SQL" -c "$PG_COUNTS_SQL"; }
if [[ $MODE == new ]]; then
  pg_compare_counts "$MANIFEST" exact _target_counts
else
  pg_compare_counts "$MANIFEST" subset _target_counts
fi
info "restored $ID into $TARGET"
succeed
