#!/usr/bin/env bash
# PostgreSQL backup: pg_dump --format=custom of the live database in one
# exported snapshot, table list and row counts recorded from that same
# snapshot, full pg_restore into a scratch server, counts compared, sha256,
# then store + GFS prune. Contract: README.md.
#
#   pg-backup.sh run     dump + verify + store + prune (one container; pvc)
#   pg-backup.sh dump    dump + verify into $BACKUP_WORK_DIR/staged (postgres image)
#   pg-backup.sh store   store the staged backup + prune (postgres image for pvc,
#                        google-cloud-cli image for gcs)
#   pg-backup.sh prune   apply the retention policy only
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

PHASE=${1:-}
bk_init pg-backup "${PHASE:-none}"
case $PHASE in
  run | dump | store | prune) ;;
  *) fail $EX_CONFIG "usage: pg-backup.sh run|dump|store|prune (got '${PHASE}')" ;;
esac
work_init
[[ $BK_RUN != *"'"* ]] || fail $EX_CONFIG "BACKUP_WORK_DIR must not contain a single quote"

# Credentials: a mounted file, never PGPASSWORD (visible in /proc/*/environ).
pg_auth_init() {
  [[ -z ${PGPASSWORD:-} ]] ||
    fail $EX_CONFIG "PGPASSWORD is set; mount the password as a file and set BACKUP_PG_PASSWORD_FILE instead"
  if [[ -n ${BACKUP_PG_PASSWORD_FILE:-} ]]; then
    [[ -r $BACKUP_PG_PASSWORD_FILE ]] ||
      fail $EX_CONFIG "BACKUP_PG_PASSWORD_FILE $BACKUP_PG_PASSWORD_FILE is not readable"
    local pw
    pw=$(<"$BACKUP_PG_PASSWORD_FILE")
    [[ $pw != *$'\n'* ]] || fail $EX_CONFIG "the password in $BACKUP_PG_PASSWORD_FILE spans several lines"
    pw=${pw//\\/\\\\}
    pw=${pw//:/\\:}
    printf '*:*:*:*:%s\n' "$pw" >"$BK_RUN/pgpass"
    export PGPASSFILE="$BK_RUN/pgpass"
  elif [[ -n ${PGPASSFILE:-} ]]; then
    # libpq ignores a password file readable by group/others (as Secret
    # volumes with fsGroup are): use a private copy.
    [[ -r $PGPASSFILE ]] || fail $EX_CONFIG "PGPASSFILE $PGPASSFILE is not readable"
    cat -- "$PGPASSFILE" >"$BK_RUN/pgpass"
    export PGPASSFILE="$BK_RUN/pgpass"
  fi
  export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
  export PGAPPNAME=${PGAPPNAME:-pg-backup}
}

resolve_prefix() {
  if [[ -n ${BACKUP_PREFIX:-} ]]; then
    PREFIX=$BACKUP_PREFIX
  elif [[ -n ${PGDATABASE:-} ]]; then
    PREFIX="pg-$PGDATABASE"
  elif [[ $PHASE == store && -f $(staged_dir)/meta ]]; then
    PREFIX=$(manifest_get "$(staged_dir)/meta" prefix) || fail $EX_CONFIG "staged meta has no prefix"
  else
    fail $EX_CONFIG "set BACKUP_PREFIX (or PGDATABASE, from which the prefix pg-\$PGDATABASE is made)"
  fi
  check_prefix "$PREFIX"
  field_str prefix "$PREFIX"
}

# dump_and_verify: leaves the verified backup in $BACKUP_WORK_DIR/staged
dump_and_verify() {
  [[ -n ${PGDATABASE:-} ]] || fail $EX_CONFIG "PGDATABASE (the database to back up) is not set"
  pg_tools_init psql pg_dump pg_restore initdb pg_ctl
  pg_auth_init
  set_now
  local id out="$BK_RUN/out" r=$BK_RUN
  new_backup_id "$PREFIX"
  id=$BK_NEW_ID
  field_str backup "$id"
  field_bool verified false
  field_str source "${PGHOST:-local socket}:${PGPORT:-5432}/$PGDATABASE"
  mkdir -p "$out"

  # 1. One session exports a REPEATABLE READ snapshot and, inside it, records
  #    the table list and row counts; pg_dump then dumps that same snapshot
  #    (--snapshot), so counts and dump describe the same instant while
  #    writers go on. The session stays open until pg_dump is done.
  stage snapshot "exporting a snapshot of $PGDATABASE and counting rows in it"
  local snap_pid snap_in
  coproc SNAP { exec psql -X -q -w -A -t -F $'\t' -v ON_ERROR_STOP=1 >"$r/snap.out" 2>"$r/snap.err"; }
  snap_pid=$SNAP_PID
  exec {snap_in}>&"${SNAP[1]}"
  on_exit_do "kill $snap_pid"
  {
    printf '%s\n' "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
    printf '%s\n' "SELECT pg_export_snapshot() \\g '$r/snap.id'"
    printf '%s\n' "\\o '$r/manifest.body'"
    printf '%s\n' "SELECT 'database', current_database();"
    printf '%s\n' "SELECT 'encoding', pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database();"
    printf '%s\n' "SELECT 'server_version', current_setting('server_version_num');"
    printf '%s;\n' "$PG_LO_SQL"
    printf '%s\n' "SELECT 'role', rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 2;"
    printf '%s\n' "SELECT DISTINCT 'tablespace', t.spcname FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace ORDER BY 2;"
    printf '%s;\n' "$PG_COUNTS_SQL"
    printf '%s\n' "\\o"
    printf '%s\n' "SELECT 1 \\g '$r/snap.done'"
  } 1>&"$snap_in" 2>/dev/null || true
  while [[ ! -s $r/snap.done ]]; do
    if ! kill -0 "$snap_pid" 2>/dev/null; then
      fail $EX_SOURCE "cannot read $PGDATABASE at ${PGHOST:-socket}:${PGPORT:-5432}: $(tail_of "$r/snap.err" 3)"
    fi
    sleep 0.05
  done
  local snap
  snap=$(<"$r/snap.id")
  [[ $snap =~ ^[0-9A-F-]+$ ]] || fail $EX_SOURCE "no snapshot id from pg_export_snapshot (got '$snap')"

  # 2. pg_dump in the exported snapshot
  stage dump "pg_dump --format=custom --snapshot=$snap"
  pg_dump --no-password --format=custom --snapshot="$snap" --file="$out/$id.dump" 2>"$r/pg_dump.err" ||
    fail $EX_SOURCE "pg_dump failed: $(tail_of "$r/pg_dump.err" 3)"
  printf 'COMMIT;\n\\q\n' 1>&"$snap_in" 2>/dev/null || true
  exec {snap_in}>&-
  wait "$snap_pid" 2>/dev/null || info "warning: the snapshot session ended with an error after the dump: $(tail_of "$r/snap.err")"

  local tables rows=0 k t n
  tables=$(grep -c $'^table\t' "$r/manifest.body" || true)
  while IFS=$'\t' read -r k t n; do if [[ $k == table ]]; then rows=$((rows + n)); fi; done <"$r/manifest.body"
  {
    printf 'format\tpg-backup-manifest-v1\n'
    printf 'backup\t%s\n' "$id"
    printf 'created\t%s\n' "$BK_NOW_ISO"
    printf 'snapshot\t%s\n' "$snap"
    printf 'pg_dump\t%s\n' "$(pg_dump --version)"
    cat -- "$r/manifest.body"
    printf 'tables\t%s\n' "$tables"
    printf 'rows\t%s\n' "$rows"
  } >"$out/$id.manifest"

  # 3. checksum what pg_dump wrote, before anything else reads it
  local bytes
  bytes=$(stat -c %s -- "$out/$id.dump")
  field_num bytes "$bytes"
  write_sha256 "$out" "$id" "$id.dump"
  field_str checksum "sha256:$(sha_of "$out/$id.sha256" "$id.dump")"

  # 4. the dump counts only after a full restore + sanity check
  pg_verify_restore "$out/$id.dump" "$out/$id.manifest"
  local why
  why=$(check_sha256 "$out" "$id") || fail $EX_CHECKSUM "dump changed during verification: $why"
  field_bool verified true

  # 5. hand over to the store step
  local sd new
  sd=$(staged_dir)
  new="$sd.new"
  rm -rf -- "$new"
  mkdir -p "$new"
  mv -- "$out/$id.dump" "$out/$id.manifest" "$out/$id.sha256" "$new/"
  printf 'id\t%s\nprefix\t%s\next\tdump\nstart\t%s\n' "$id" "$PREFIX" "$BK_START" >"$new/meta"
  chmod 0755 "$new"
  chmod 0644 "$new"/*
  rm -rf -- "$sd"
  mv -- "$new" "$sd"
  info "verified $id ($bytes bytes, $tables tables, $rows rows)"
}

resolve_prefix
case $PHASE in
  run)
    dest_init
    dest_check_writable "$PREFIX"
    dump_and_verify
    store_staged "$PREFIX" dump
    ;;
  dump)
    rm -rf -- "$(staged_dir)"
    dump_and_verify
    ;;
  store)
    dest_init
    store_staged "$PREFIX" dump
    ;;
  prune)
    dest_init
    set_now
    stage prune
    prune "$PREFIX" || fail $EX_PRUNE "could not delete: $BK_PRUNE_FAILED"
    ;;
esac
succeed
