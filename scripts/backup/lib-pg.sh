# shellcheck shell=bash
# Backup scripts: the scratch PostgreSQL used to verify dumps and drills.
# Sourced by lib.sh (see there and README.md).

# scratch PostgreSQL: initdb + pg_ctl in the work dir, Unix socket only.

pg_tools_init() {
  if [[ -n ${PG_BINDIR:-} ]]; then
    PATH="$PG_BINDIR:$PATH"
  elif ! command -v pg_ctl >/dev/null || ! command -v initdb >/dev/null; then
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n $d ]] && PATH="$PATH:$d"
  fi
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || fail $EX_CONFIG "$t not found on PATH (run in the postgres image, or set PG_BINDIR)"
  done
  export PATH
}

# scratch_pg_start: sets SCRATCH_PG_SOCK (socket dir); stopped on exit.
scratch_pg_start() {
  local d="$BK_RUN/pg"
  mkdir -p "$d"
  [[ $(id -u) -ne 0 ]] || fail $EX_CONFIG "the scratch PostgreSQL cannot run as root; run as an unprivileged user (the pods use uid 999)"
  initdb -D "$d/data" -U postgres -A trust -E UTF8 --locale=C -N >"$d/initdb.log" 2>&1 ||
    fail $EX_VERIFY "scratch initdb failed: $(tail_of "$d/initdb.log")"
  on_exit_do "pg_ctl -D '$d/data' -m immediate -w stop"
  pg_ctl -D "$d/data" -l "$d/server.log" -w -t 60 -o "-c listen_addresses='' -c unix_socket_directories='$d' -c port=5432 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c dynamic_shared_memory_type=mmap -c max_connections=10 -c shared_buffers=32MB -c max_wal_size=1GB -c autovacuum=off" start >/dev/null 2>"$d/pg_ctl.err" ||
    fail $EX_VERIFY "scratch PostgreSQL did not start: $(tail_of "$d/server.log") $(tail_of "$d/pg_ctl.err")"
  SCRATCH_PG_SOCK=$d
}

# scratch_psql DB ARGS...: psql on the scratch server, ignoring the source's PG* settings
scratch_psql() {
  local db=$1
  shift
  env -u PGSERVICE -u PGSERVICEFILE -u PGOPTIONS -u PGSSLMODE -u PGTARGETSESSIONATTRS \
    psql -X -q -w -v ON_ERROR_STOP=1 -d "host=$SCRATCH_PG_SOCK port=5432 user=postgres dbname=$db" "$@"
}
scratch_pg_restore() {
  env -u PGSERVICE -u PGSERVICEFILE -u PGOPTIONS -u PGSSLMODE -u PGTARGETSESSIONATTRS \
    pg_restore -w -d "host=$SCRATCH_PG_SOCK port=5432 user=postgres dbname=$1" "${@:2}"
}

# The tables and row counts of the connected database: "table<TAB>schema.name<TAB>count"
# for every ordinary and partitioned table outside the system schemas that is
# not part of an extension, in name order; counts are per table (ONLY), so a
# partitioned parent counts 0 and each partition its own rows.
PG_COUNTS_SQL="SELECT 'table', format('%I.%I', n.nspname, c.relname),
 (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM ONLY %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 2"

PG_LO_SQL="SELECT 'large_objects', count(*) FROM pg_largeobject_metadata"

# pg_verify_restore DUMP MANIFEST: restore DUMP completely into a scratch
# database and compare its tables and row counts with MANIFEST. Sets fields
# tables, rows. Fails with EX_VERIFY.
pg_verify_restore() {
  local dump=$1 manifest=$2 enc
  stage verify "full pg_restore into a scratch server"
  [[ -s $dump ]] || fail $EX_VERIFY "dump is empty (0 bytes)"
  [[ $(head -c 5 -- "$dump") == PGDMP ]] || fail $EX_VERIFY "dump is not a pg_dump custom-format archive (no PGDMP header)"
  enc=$(manifest_get "$manifest" encoding) || enc=UTF8
  [[ $enc =~ ^[A-Za-z0-9_]+$ ]] || fail $EX_VERIFY "bad encoding '$enc' in the manifest"
  scratch_pg_start
  # the roles of the source cluster (recorded in the manifest), so that
  # owners, grants and policies restore exactly as on the real server
  {
    printf '%s\n' "CREATE TEMP TABLE backup_roles (name text);" "COPY backup_roles FROM STDIN;"
    local k v
    while IFS=$'\t' read -r k v; do
      if [[ $k == role ]]; then printf '%s\n' "${v//\\/\\\\}"; fi
    done <"$manifest"
    printf '%s\n' '\.' "DO \$\$ DECLARE n text; BEGIN
      FOR n IN SELECT name FROM backup_roles WHERE name NOT IN (SELECT rolname FROM pg_roles) LOOP
        EXECUTE format('CREATE ROLE %I NOLOGIN', n);
      END LOOP; END \$\$;"
  } >"$BK_RUN/roles.sql"
  scratch_psql postgres -f "$BK_RUN/roles.sql" >/dev/null 2>"$BK_RUN/roles.err" ||
    fail $EX_VERIFY "cannot create the source's roles in the scratch server: $(tail_of "$BK_RUN/roles.err")"
  scratch_psql postgres -c "CREATE DATABASE verify TEMPLATE template0 ENCODING '$enc' LC_COLLATE 'C' LC_CTYPE 'C'" \
    >/dev/null 2>"$BK_RUN/createdb.err" ||
    fail $EX_VERIFY "cannot create the scratch database: $(tail_of "$BK_RUN/createdb.err")"
  # --no-tablespaces: the scratch server has only its default tablespace;
  # tables of other tablespaces are restored (and counted) there. The dump
  # keeps the tablespaces for a real restore (manifest: "tablespace" lines).
  scratch_pg_restore verify --exit-on-error --no-tablespaces "$dump" 2>"$BK_RUN/restore.err" ||
    fail $EX_VERIFY "pg_restore of the dump failed: $(tail_of "$BK_RUN/restore.err" 3)"
  pg_compare_counts "$manifest" exact
}

# pg_compare_counts MANIFEST exact|subset [psql-runner]: the scratch/target
# database's tables and row counts against the manifest's "table" lines.
pg_compare_counts() {
  local manifest=$1 mode=$2 runner=${3:-_scratch_verify_counts}
  stage sanity "tables and row counts against the manifest"
  grep -E $'^(table|large_objects)\t' "$manifest" | LC_ALL=C sort >"$BK_RUN/expected.tsv" || true
  "$runner" >"$BK_RUN/actual.unsorted" 2>"$BK_RUN/counts.err" ||
    fail $EX_VERIFY "sanity query failed: $(tail_of "$BK_RUN/counts.err")"
  LC_ALL=C sort "$BK_RUN/actual.unsorted" >"$BK_RUN/actual.tsv"
  local expected_tables
  expected_tables=$(manifest_get "$manifest" tables) || fail $EX_VERIFY "manifest has no table count"
  [[ $(grep -c $'^table\t' "$BK_RUN/expected.tsv" || true) -eq $expected_tables ]] ||
    fail $EX_VERIFY "manifest lists $(grep -c $'^table\t' "$BK_RUN/expected.tsv" || true) tables but says $expected_tables"
  local diffs
  if [[ $mode == exact ]]; then
    diffs=$(diff "$BK_RUN/expected.tsv" "$BK_RUN/actual.tsv" | grep '^[<>]' | tr '\n\t' '; ' | cut -c1-600) || true
  else
    diffs=$(LC_ALL=C comm -23 "$BK_RUN/expected.tsv" "$BK_RUN/actual.tsv" | sed 's/^/missing or different: /' | tr '\n\t' '; ' | cut -c1-600) || true
  fi
  [[ -z $diffs ]] || fail $EX_VERIFY "restored tables/row counts differ from the backup's manifest: $diffs (< manifest, > restored)"
  local rows=0 k t n
  while IFS=$'\t' read -r k t n; do if [[ $k == table ]]; then rows=$((rows + n)); fi; done <"$BK_RUN/expected.tsv"
  field_num tables "$expected_tables"
  field_num rows "$rows"
  field_bool sanity_ok true
}
_scratch_verify_counts() { scratch_psql verify -A -t -F $'\t' -c "$PG_LO_SQL" -c "$PG_COUNTS_SQL"; }

