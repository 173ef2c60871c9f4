#!/usr/bin/env bash
# docker-entrypoint.sh of localhost-built postgres image (scripts/node/data-images): written here
# to behave like the official image's entrypoint for what the project uses (README.md beside it):
#   postgres [args…]   initialise $PGDATA once (initdb as the current uid, superuser $POSTGRES_USER
#                      with the password of $POSTGRES_PASSWORD_FILE or $POSTGRES_PASSWORD, database
#                      $POSTGRES_DB, /docker-entrypoint-initdb.d/*), then exec the server
#   anything else      exec'd as given (psql, pg_dump, bash …)
# Started as root it prepares the directories and re-runs itself as postgres (uid 999) with gosu.
set -Eeuo pipefail

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
fail() { log "error: $*"; exit 1; }

# VAR or VAR_FILE (never both): the value ends in VAR, the _FILE variable is dropped.
from_env_or_file() {
  local var=$1 default=${2:-} file_var="${1}_FILE"
  if [[ -n ${!var:-} && -n ${!file_var:-} ]]; then fail "$var and $file_var are both set; set one of them."; fi
  local value=$default
  if [[ -n ${!var:-} ]]; then value=${!var}
  elif [[ -n ${!file_var:-} ]]; then
    [[ -r ${!file_var} ]] || fail "$file_var names ${!file_var}, which this user (uid $(id -u)) cannot read."
    value=$(<"${!file_var}")
  fi
  export "$var=$value"
  unset "$file_var"
}

stops_at_once() { # postgres options that print something and exit: no initialisation for them
  local a
  for a in "$@"; do case $a in -'?'|--help|--describe-config|-V|--version) return 0 ;; esac; done
  return 1
}

prepare_dirs() { # as root: owned by postgres; as another uid: what it may change
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA" 2>/dev/null || true # initdb refuses a group/other-accessible data directory
  mkdir -p /var/run/postgresql 2>/dev/null || true
  chmod 03775 /var/run/postgresql 2>/dev/null || true
  if [[ $(id -u) == 0 ]]; then
    find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres: {} +
  fi
}

# initdb and the server want the running uid to have a passwd entry; a uid chosen at run time has
# none, so libnss_wrapper lends it one for the duration of initdb.
with_passwd_entry() {
  local uid gid lib
  uid=$(id -u); gid=$(id -g)
  if getent passwd "$uid" >/dev/null; then "$@"; return; fi
  for lib in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do [[ -s $lib ]] && break; done
  [[ -s $lib ]] || fail "uid $uid has no passwd entry and libnss_wrapper is missing."
  local dir; dir=$(mktemp -d)
  printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$uid" "$gid" "$PGDATA" >"$dir/passwd"
  printf 'postgres:x:%s:\n' "$gid" >"$dir/group"
  LD_PRELOAD=$lib NSS_WRAPPER_PASSWD=$dir/passwd NSS_WRAPPER_GROUP=$dir/group "$@"
  rm -rf "$dir"
}

sql() { # psql on the temporary server's socket as the superuser
  PGHOST= PGHOSTADDR= psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER" "$@"
}

initialise() { # an empty $PGDATA: initdb, remote access by password, the database, init scripts
  if [[ -z $POSTGRES_PASSWORD && ${POSTGRES_HOST_AUTH_METHOD:-} != trust ]]; then
    fail "the database is not initialised and no superuser password is set: set POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD)."
  fi
  ls /docker-entrypoint-initdb.d/ >/dev/null # unreadable init scripts fail here, before initdb
  # --pwfile does not accept an empty file: one newline is what an empty password looks like
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words by contract
  with_passwd_entry initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    ${POSTGRES_INITDB_ARGS:-}
  # every host may connect, with the method the server hashes passwords for (scram-sha-256 in 15)
  local method=${POSTGRES_HOST_AUTH_METHOD:-}
  [[ -n $method ]] || method=$(postgres -C password_encryption "$@")
  printf '\nhost all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"

  # a temporary server on the unix socket only: nobody connects before initialisation is over
  export PGPASSWORD=$POSTGRES_PASSWORD
  NOTIFY_SOCKET= PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -w start \
    -o "$(printf '%q ' "$@" -c listen_addresses= -p "${PGPORT:-5432}")"
  if [[ $POSTGRES_DB != postgres ]] &&
     [[ -z $(sql --dbname postgres --tuples-only --set db="$POSTGRES_DB" <<<"SELECT 1 FROM pg_database WHERE datname = :'db'") ]]; then
    sql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [[ -e $f ]] || continue
    log "init script $f"
    case $f in
      *.sh) if [[ -x $f ]]; then "$f"; else . "$f"; fi ;;
      *.sql) sql --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) gunzip -c "$f" | sql --dbname "$POSTGRES_DB" ;;
      *.sql.xz) xzcat "$f" | sql --dbname "$POSTGRES_DB" ;;
      *.sql.zst) zstd -dc "$f" | sql --dbname "$POSTGRES_DB" ;;
      *) log "ignoring $f (not .sh, .sql, .sql.gz, .sql.xz or .sql.zst)" ;;
    esac
  done
  PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
  log "PostgreSQL init process complete; ready for start up."
}

main() {
  [[ ${1:-} == -* ]] && set -- postgres "$@"
  if [[ ${1:-} == postgres ]] && ! stops_at_once "$@"; then
    from_env_or_file POSTGRES_PASSWORD
    from_env_or_file POSTGRES_USER postgres
    from_env_or_file POSTGRES_DB "$POSTGRES_USER"
    from_env_or_file POSTGRES_INITDB_ARGS
    prepare_dirs
    [[ $(id -u) == 0 ]] && exec gosu postgres "$BASH_SOURCE" "$@"
    if [[ -s $PGDATA/PG_VERSION ]]; then
      log "PostgreSQL Database directory appears to contain a database; Skipping initialization"
    else
      initialise "${@:2}"
    fi
    unset POSTGRES_PASSWORD
  fi
  exec "$@"
}

main "$@"
