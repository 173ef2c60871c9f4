# shellcheck shell=bash
# Shared code of the backup scripts: JSON log line, failure handling and
# configuration helpers here; by concern in the files sourced at the end:
#   lib-store.sh      destination seam (pvc | gcs), listing, staging, store, fetch
#   lib-retention.sh  GFS retention (restic forget semantics), prune
#   lib-checksum.sh   sha256 lists and manifests
#   lib-pg.sh         scratch PostgreSQL, restore verification, row counts
#   lib-redis.sh      redis-check-rdb, scratch redis-server
#
# Sourced by pg-backup.sh, redis-backup.sh, restore-drill.sh, pg-restore.sh,
# redis-restore.sh. Needs bash >= 4.4 and GNU coreutils only (plus the DB
# client tools, or gcloud for BACKUP_DEST=gcs). See README.md for the contract.

# ---------------------------------------------------------------------------
# exit codes (README.md "Exit codes")
readonly EX_OK=0 EX_INTERNAL=1 EX_CONFIG=2 EX_SOURCE=3 EX_VERIFY=4 EX_CHECKSUM=5 EX_DEST=6 EX_PRUNE=7 EX_TARGET=8

# ---------------------------------------------------------------------------
# logging: progress on stderr, exactly one JSON line on stdout per invocation

BK_EVENT=${BK_EVENT:-backup}
BK_PHASE=${BK_PHASE:-run}
BK_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
BK_START_S=$(date -u +%s)
BK_LOGGED=0
BK_STAGE=start
BK_LAST_ERR=
declare -A BK_F=()      # field name -> JSON value
declare -a BK_ORDER=()  # field names in insertion order
BK_CLEANUPS=()          # commands run (in reverse order) on exit

info() { printf '[%s %(%H:%M:%S)T] %s\n' "$BK_EVENT" -1 "$*" >&2; }

# json_escape STRING: STRING as a JSON string literal. Bytes outside printable
# ASCII (and control characters) are dropped, so the line is always valid JSON.
json_escape() {
  local LC_ALL=C s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/}
  if [[ $s == *[!\ -~]* ]]; then
    s=$(tr -cd '\040-\176' <<<"$s")
  fi
  printf '"%s"' "$s"
}

_field() { # name json
  [[ -v "BK_F[$1]" ]] || BK_ORDER+=("$1")
  BK_F[$1]=$2
}
field_str() { _field "$1" "$(json_escape "$2")"; }
field_num() { [[ $2 =~ ^-?[0-9]+$ ]] && _field "$1" "$2" || _field "$1" null; }
field_bool() { if [[ $2 == true ]]; then _field "$1" true; else _field "$1" false; fi; }
field_null() { _field "$1" null; }
# field_list NAME ITEM...: a JSON array of strings
field_list() {
  local name=$1 out= item
  shift
  for item in "$@"; do out+="${out:+,}$(json_escape "$item")"; done
  _field "$name" "[$out]"
}

emit_log() { # status
  [[ $BK_LOGGED -eq 0 ]] || return 0
  BK_LOGGED=1
  local end end_s line k
  end=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  end_s=$(date -u +%s)
  line="{\"event\":$(json_escape "$BK_EVENT"),\"phase\":$(json_escape "$BK_PHASE"),\"status\":$(json_escape "$1")"
  line+=",\"start\":\"$BK_START\",\"end\":\"$end\",\"duration_s\":$((end_s - BK_START_S))"
  for k in "${BK_ORDER[@]}"; do line+=",$(json_escape "$k"):${BK_F[$k]}"; done
  printf '%s}\n' "$line"
}

run_cleanups() {
  local i
  for ((i = ${#BK_CLEANUPS[@]} - 1; i >= 0; i--)); do
    eval "${BK_CLEANUPS[$i]}" >/dev/null 2>&1 || true
  done
  BK_CLEANUPS=()
}
on_exit_do() { BK_CLEANUPS+=("$1"); }

# fail CODE MESSAGE: log the error line, clean up, exit CODE.
fail() {
  local code=$1 msg=$2
  # a signal can arrive while a long copy runs in the background (bk_bg)
  [[ -z ${BK_CHILD:-} ]] || kill "$BK_CHILD" 2>/dev/null || true
  BK_CHILD=
  info "FAILED ($BK_STAGE): $msg"
  field_num exit_code "$code"
  field_str stage "$BK_STAGE"
  field_str error "$msg"
  emit_log error
  trap - EXIT
  run_cleanups
  exit "$code"
}

succeed() {
  emit_log ok
  trap - EXIT
  run_cleanups
  exit 0
}

_on_exit() {
  fail $EX_INTERNAL "unexpected failure${BK_LAST_ERR:+ ($BK_LAST_ERR)}"
}

# Called by every script right after sourcing.
bk_init() { # event phase
  BK_EVENT=$1
  BK_PHASE=$2
  set -Eeuo pipefail
  umask 077
  export TZ=UTC
  # A write to a closed pipe must fail the command, not kill the script
  # before it can log.
  trap '' PIPE
  trap 'BK_LAST_ERR="line $LINENO: $BASH_COMMAND exited $?"' ERR
  trap _on_exit EXIT
  trap 'fail $EX_INTERNAL "terminated by signal"' TERM INT HUP
}

stage() { BK_STAGE=$1; info "$1${2:+: $2}"; }

# bk_bg OUT ERR CMD...: run the external command CMD in the background, its
# stdout to OUT and stderr appended to ERR, and wait for it. Bash runs a trap
# only after the foreground command ends; `wait` is interrupted at once, so a
# SIGTERM (Job deadline, node drain) during a long upload is handled now, and
# fail() stops the copy before the cleanups remove what it wrote. (No
# redirection on the bk_bg call itself: the trap would inherit it and the
# log line would go there.)
bk_bg() {
  local rc=0 out=$1 err=$2
  shift 2
  "$@" >"$out" 2>>"$err" &
  BK_CHILD=$!
  wait "$BK_CHILD" || rc=$?
  BK_CHILD=
  return "$rc"
}

# tail_of FILE [LINES]: the last lines of FILE on one line (for error messages)
tail_of() {
  [[ -s $1 ]] || return 0
  tail -n "${2:-5}" -- "$1" | tr '\n' ' ' | sed 's/ *$//'
}

# ---------------------------------------------------------------------------
# configuration helpers

need_int() { # NAME VALUE
  [[ $2 =~ ^[0-9]+$ ]] || fail $EX_CONFIG "$1 must be a non-negative integer, got '$2'"
}

# set_now: BK_NOW_TS (YYYYMMDDTHHMMSSZ) and BK_NOW_ISO from BACKUP_NOW
# (anything GNU date -d reads, e.g. 2025-03-31T02:00:00Z) or the clock.
set_now() {
  local out
  if [[ -n ${BACKUP_NOW:-} ]]; then
    out=$(date -u -d "$BACKUP_NOW" '+%Y%m%dT%H%M%SZ %Y-%m-%dT%H:%M:%SZ' 2>/dev/null) ||
      fail $EX_CONFIG "BACKUP_NOW is not a date: '$BACKUP_NOW'"
  else
    out=$(date -u '+%Y%m%dT%H%M%SZ %Y-%m-%dT%H:%M:%SZ')
  fi
  BK_NOW_TS=${out% *}
  BK_NOW_ISO=${out#* }
  field_str now "$BK_NOW_ISO"
}

check_prefix() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] ||
    fail $EX_CONFIG "BACKUP_PREFIX must match [A-Za-z0-9][A-Za-z0-9._-]*, got '$1'"
}

# Working directory (an emptyDir in the pod). Everything a run creates lives
# below it; nothing outside it and the destination is written.
work_init() {
  BACKUP_WORK_DIR=${BACKUP_WORK_DIR:-/work}
  [[ -d $BACKUP_WORK_DIR && -w $BACKUP_WORK_DIR ]] ||
    fail $EX_CONFIG "BACKUP_WORK_DIR '$BACKUP_WORK_DIR' is not a writable directory"
  BK_RUN=$(mktemp -d "$BACKUP_WORK_DIR/run.XXXXXX") ||
    fail $EX_CONFIG "cannot create a run directory in $BACKUP_WORK_DIR"
  on_exit_do "rm -rf -- '$BK_RUN'"
  export HOME=${HOME:-$BK_RUN}
  [[ -w $HOME ]] || export HOME=$BK_RUN
  # here-documents and tools' temporary files stay in the work dir too, so a
  # read-only root filesystem is fine
  export TMPDIR=$BK_RUN
}

# A backup is the set of files <id>.<ext>, <id>.manifest, <id>.sha256 where
# <id> = <prefix>-<YYYYMMDDTHHMMSSZ>-<8 hex digits>: the time of the run and a
# random part, so two runs in the same second (a Job started by hand next to
# the scheduled one, a retried pod, two clusters on one bucket prefix) never
# share an id. Backups named <prefix>-<YYYYMMDDTHHMMSSZ> (before the random
# part) are still recognised. <id>.sha256 is written last; a backup without
# all three files is incomplete and is never used, listed as kept or pruned.

# new_backup_id PREFIX (after set_now): sets BK_NEW_ID
new_backup_id() {
  local r
  r=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n') || r=
  [[ $r =~ ^[0-9a-f]{8}$ ]] || fail $EX_INTERNAL "cannot read /dev/urandom for the backup id"
  BK_NEW_ID="$1-$BK_NOW_TS-$r"
}

# valid_ts YYYYMMDDTHHMMSSZ: a real calendar date and time (a name carrying
# 2025-13-99 is not a backup of ours)
valid_ts() {
  [[ $1 =~ ^[0-9]{8}T[0-9]{6}Z$ ]] || return 1
  local y=$((10#${1:0:4})) m=$((10#${1:4:2})) d=$((10#${1:6:2})) dim
  ((m >= 1 && m <= 12 && d >= 1 && 10#${1:9:2} <= 23 && 10#${1:11:2} <= 59 && 10#${1:13:2} <= 59)) || return 1
  case $m in
    4 | 6 | 9 | 11) dim=30 ;;
    2) if (((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)); then dim=29; else dim=28; fi ;;
    *) dim=31 ;;
  esac
  ((d <= dim))
}

# ts_epoch YYYYMMDDTHHMMSSZ: seconds since the epoch
ts_epoch() {
  date -u -d "${1:0:4}-${1:4:2}-${1:6:2} ${1:9:2}:${1:11:2}:${1:13:2} UTC" +%s
}

# BACKUP_STALE_HOURS: what killed runs left (temporary files, incomplete
# backups) is removed once older than this; longer than any run can take
# (the CronJobs' activeDeadlineSeconds), so a running upload is never touched.
# stale_hours: sets BK_STALE_HOURS (validated)
stale_hours() {
  BK_STALE_HOURS=${BACKUP_STALE_HOURS:-24}
  [[ $BK_STALE_HOURS =~ ^[0-9]+$ ]] && ((BK_STALE_HOURS >= 1)) ||
    fail $EX_CONFIG "BACKUP_STALE_HOURS must be a whole number of hours >= 1, got '$BK_STALE_HOURS'"
}
BK_LEFTOVERS=() # names of leftovers of killed runs this run removed


BK_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib-store.sh
source "$BK_LIB_DIR/lib-store.sh"
# shellcheck source=lib-retention.sh
source "$BK_LIB_DIR/lib-retention.sh"
# shellcheck source=lib-checksum.sh
source "$BK_LIB_DIR/lib-checksum.sh"
# shellcheck source=lib-pg.sh
source "$BK_LIB_DIR/lib-pg.sh"
# shellcheck source=lib-redis.sh
source "$BK_LIB_DIR/lib-redis.sh"
