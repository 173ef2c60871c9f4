# shellcheck shell=bash
# Shared code of the backup scripts: JSON log line, failure handling, the
# destination seam (pvc | gcs), GFS retention (restic forget semantics),
# checksums and the throwaway scratch servers used for verification.
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
# <id> = <prefix>-<YYYYMMDDTHHMMSSZ>. <id>.sha256 is written last; a backup
# without it is incomplete and is never used, listed as kept or pruned.
ts_of_id() { printf '%s\n' "${1##*-}"; }

# ---------------------------------------------------------------------------
# destination seam. BACKUP_DEST=pvc: BACKUP_DIR is a directory (a mounted PVC).
# BACKUP_DEST=gcs: BACKUP_GCS_URL=gs://bucket[/prefix], through `gcloud storage`.

dest_init() {
  BACKUP_DEST=${BACKUP_DEST:-}
  case $BACKUP_DEST in
    pvc)
      BACKUP_DIR=${BACKUP_DIR:-/backups}
      BK_DEST_DESC="pvc:$BACKUP_DIR"
      ;;
    gcs)
      BACKUP_GCS_URL=${BACKUP_GCS_URL:-}
      BACKUP_GCS_URL=${BACKUP_GCS_URL%/}
      [[ $BACKUP_GCS_URL =~ ^gs://[a-z0-9][a-z0-9._-]*(/.*)?$ ]] ||
        fail $EX_CONFIG "BACKUP_GCS_URL must be gs://BUCKET[/PREFIX], got '$BACKUP_GCS_URL'"
      command -v gcloud >/dev/null ||
        fail $EX_CONFIG "BACKUP_DEST=gcs needs the gcloud CLI (google-cloud-cli image)"
      export CLOUDSDK_CORE_DISABLE_PROMPTS=1
      export CLOUDSDK_CONFIG=${CLOUDSDK_CONFIG:-$BACKUP_WORK_DIR/gcloud-config}
      mkdir -p "$CLOUDSDK_CONFIG"
      BK_DEST_DESC=$BACKUP_GCS_URL
      ;;
    *) fail $EX_CONFIG "BACKUP_DEST must be 'pvc' or 'gcs', got '$BACKUP_DEST'" ;;
  esac
  field_str dest "$BK_DEST_DESC"
}

# dest_check_readable / dest_check_writable: fail early with a clear message
dest_check_readable() {
  if [[ $BACKUP_DEST == pvc ]]; then
    [[ -d $BACKUP_DIR && -r $BACKUP_DIR && -x $BACKUP_DIR ]] ||
      fail $EX_DEST "destination $BACKUP_DIR is not a readable directory"
  fi
}
dest_check_writable() {
  dest_check_readable
  if [[ $BACKUP_DEST == pvc ]]; then
    local probe="$BACKUP_DIR/.write-probe.$$"
    if ! : 2>/dev/null >"$probe"; then
      fail $EX_DEST "destination $BACKUP_DIR is not writable"
    fi
    rm -f -- "$probe"
  fi
}

_gcs() { # args... ; stderr kept in $BK_RUN/gcloud.err
  gcloud storage "$@" 2>"$BK_RUN/gcloud.err"
}

# dest_list: names (no directories) in the destination, one per line
dest_list() {
  if [[ $BACKUP_DEST == pvc ]]; then
    local f
    [[ -d $BACKUP_DIR ]] || return 1
    for f in "$BACKUP_DIR"/*; do
      [[ -f $f ]] && printf '%s\n' "${f##*/}"
    done
    return 0
  fi
  local out line
  out=$(_gcs ls "$BACKUP_GCS_URL/") || {
    # an empty bucket/prefix is not an error for us
    grep -q 'matched no objects' "$BK_RUN/gcloud.err" 2>/dev/null && return 0
    return 1
  }
  while IFS= read -r line; do
    line=${line#"$BACKUP_GCS_URL/"}
    [[ -n $line && $line != */* ]] && printf '%s\n' "$line"
  done <<<"$out"
}

# dest_put SRC NAME: store SRC as NAME; never overwrites; on pvc the file is
# written under a hidden temporary name, fsynced, then renamed (atomic).
dest_put() {
  local src=$1 name=$2
  if [[ $BACKUP_DEST == pvc ]]; then
    local tmp="$BACKUP_DIR/.$name.part"
    [[ ! -e $BACKUP_DIR/$name ]] || { echo "$name already exists" >"$BK_RUN/put.err"; return 1; }
    if cp -- "$src" "$tmp" 2>"$BK_RUN/put.err" && sync -- "$tmp" 2>>"$BK_RUN/put.err" &&
       mv -n -- "$tmp" "$BACKUP_DIR/$name" 2>>"$BK_RUN/put.err" && [[ -e $BACKUP_DIR/$name && ! -e $tmp ]]; then
      sync -- "$BACKUP_DIR" 2>/dev/null || true
      return 0
    fi
    rm -f -- "$tmp"
    return 1
  fi
  _gcs cp --no-clobber "$src" "$BACKUP_GCS_URL/$name" >/dev/null || {
    cp "$BK_RUN/gcloud.err" "$BK_RUN/put.err"
    return 1
  }
}

# dest_get NAME DST
dest_get() {
  if [[ $BACKUP_DEST == pvc ]]; then
    cp -- "$BACKUP_DIR/$1" "$2" 2>"$BK_RUN/get.err"
    return
  fi
  _gcs cp "$BACKUP_GCS_URL/$1" "$2" >/dev/null || { cp "$BK_RUN/gcloud.err" "$BK_RUN/get.err"; return 1; }
}

# dest_rm NAME...
dest_rm() {
  (($#)) || return 0
  local n
  local -a paths=()
  if [[ $BACKUP_DEST == pvc ]]; then
    for n in "$@"; do paths+=("$BACKUP_DIR/$n"); done
    rm -f -- "${paths[@]}"
    return
  fi
  for n in "$@"; do paths+=("$BACKUP_GCS_URL/$n"); done
  _gcs rm "${paths[@]}" >/dev/null
}

# list_backups PREFIX: sets BK_IDS to the complete backups (ids with a
# .sha256) of PREFIX, newest first, BK_INCOMPLETE to ids that have files but
# no .sha256, and BK_LISTING to the raw listing. Fails (EX_DEST) when the
# destination cannot be listed. Runs in the current shell (no subshell), so a
# failure can never look like an empty destination.
list_backups() {
  local prefix=$1 name rest id
  local -A complete=() seen=()
  BK_FILES=()
  if ! BK_LISTING=$(dest_list); then
    local why; why=$(tail_of "$BK_RUN/gcloud.err")
    fail $EX_DEST "cannot list the destination $BK_DEST_DESC${why:+: $why}"
  fi
  BK_INCOMPLETE=()
  BK_IDS=()
  while IFS= read -r name; do
    [[ $name == "$prefix-"* ]] || continue
    rest=${name#"$prefix-"}
    [[ $rest =~ ^([0-9]{8}T[0-9]{6}Z)\.([A-Za-z0-9._-]+)$ ]] || continue
    id="$prefix-${BASH_REMATCH[1]}"
    seen[$id]=1
    BK_FILES[$id]+="$name"$'\n'
    if [[ ${BASH_REMATCH[2]} == sha256 ]]; then complete[$id]=1; fi
  done <<<"$BK_LISTING"
  for id in "${!seen[@]}"; do
    [[ -v "complete[$id]" ]] || BK_INCOMPLETE+=("$id")
  done
  if ((${#complete[@]})); then
    mapfile -t BK_IDS < <(printf '%s\n' "${!complete[@]}" | LC_ALL=C sort -r)
  fi
  return 0
}

declare -A BK_FILES=() # id -> its files in the destination, one a line (from list_backups)

# files_of ID: the destination names belonging to backup ID (from the last list_backups)
files_of() {
  printf '%s' "${BK_FILES[$1]:-}"
}

# ---------------------------------------------------------------------------
# retention: exactly restic's ApplyPolicy for --keep-daily/--keep-weekly/
# --keep-monthly (restic internal/restic/snapshot_policy.go):
#   * backups sorted newest first;
#   * if every count is 0 the policy is empty and everything is kept;
#   * for each policy with count > 0 independently: walk newest first, keep a
#     backup when its bucket (UTC day YYYYMMDD / ISO week YYYYWW / month
#     YYYYMM) differs from the bucket of the previously kept one, and
#     decrement the count; a policy stops when its count reaches 0;
#   * and, as restic does since 0.14, the OLDEST backup is kept as well while
#     a policy still has count left ("keeps history as long as possible");
#   * a backup kept by any policy is kept.
# The result depends only on the backups' timestamps, never on the clock.
#
# retention_select DAILY WEEKLY MONTHLY < timestamps (YYYYMMDDTHHMMSSZ, one a line)
# prints "keep TS" / "remove TS" lines, newest first.
retention_select() {
  local -a counts=("$1" "$2" "$3") last=(-1 -1 -1) tss=() keys=()
  local ts i n b keep line
  mapfile -t tss < <(LC_ALL=C sort -ru)
  n=${#tss[@]}
  ((n > 0)) || return 0
  if (($1 == 0 && $2 == 0 && $3 == 0)); then
    for ts in "${tss[@]}"; do printf 'keep %s\n' "$ts"; done
    return 0
  fi
  # one date(1) call computes day, ISO week and month of every timestamp
  mapfile -t keys < <(
    for ts in "${tss[@]}"; do
      printf '%s-%s-%s %s:%s:%s UTC\n' "${ts:0:4}" "${ts:4:2}" "${ts:6:2}" "${ts:9:2}" "${ts:11:2}" "${ts:13:2}"
    done | date -u -f - '+%Y%m%d %G%V %Y%m'
  )
  ((${#keys[@]} == n)) || return 1
  for ((i = 0; i < n; i++)); do
    # shellcheck disable=SC2206
    line=(${keys[$i]})
    keep=0
    for b in 0 1 2; do
      if ((counts[b] > 0)); then
        if [[ ${line[$b]} != "${last[$b]}" ]] || ((i == n - 1)); then
          keep=1
          last[b]=${line[$b]}
          counts[b]=$((counts[b] - 1))
        fi
      fi
    done
    if ((keep)); then printf 'keep %s\n' "${tss[$i]}"; else printf 'remove %s\n' "${tss[$i]}"; fi
  done
}

# prune PREFIX [PROTECTED_ID]: apply BACKUP_KEEP_DAILY/WEEKLY/MONTHLY
# (default 7/4/0) to the complete backups of PREFIX. PROTECTED_ID (the backup
# just stored) is never removed, whatever the policy says. A removed backup
# loses its .sha256 first (so it is never seen half-deleted as complete).
# Sets fields kept, pruned, incomplete. Returns non-zero when a delete failed.
prune() {
  local prefix=$1 protected=${2:-} d w m id ts verdict
  d=${BACKUP_KEEP_DAILY:-7} w=${BACKUP_KEEP_WEEKLY:-4} m=${BACKUP_KEEP_MONTHLY:-0}
  need_int BACKUP_KEEP_DAILY "$d"
  need_int BACKUP_KEEP_WEEKLY "$w"
  need_int BACKUP_KEEP_MONTHLY "$m"
  field_str policy "daily=$d weekly=$w monthly=$m"
  local -a kept=() pruned=() failed=()
  list_backups "$prefix"
  local decisions
  decisions=$(for id in "${BK_IDS[@]}"; do ts_of_id "$id"; done | retention_select "$d" "$w" "$m") ||
    fail $EX_PRUNE "retention: cannot compute calendar buckets with date(1)"
  local -a doomed=() shas=()
  local f left
  local -A present=()
  while read -r verdict ts; do
    [[ -n ${verdict:-} ]] || continue
    id="$prefix-$ts"
    if [[ $verdict == keep || $id == "$protected" ]]; then
      kept+=("$id")
      continue
    fi
    doomed+=("$id")
    shas+=("$id.sha256")
  done <<<"$decisions"
  if ((${#doomed[@]})); then
    # 1. every doomed .sha256 (the backups stop being complete), in one call
    #    (gcloud starts slowly);
    # 2. the other files only of the backups whose .sha256 is really gone, so
    #    a failed delete never leaves a "complete" backup without its data;
    # 3. a backup counts as pruned when none of its files is left.
    dest_rm "${shas[@]}" || true
    left=$(dest_list) || fail $EX_PRUNE "cannot list the destination after deleting"
    while IFS= read -r f; do present[$f]=1; done <<<"$left"
    local -a rest=()
    for id in "${doomed[@]}"; do
      [[ -v "present[$id.sha256]" ]] && continue
      # names are [A-Za-z0-9._-] only (list_backups), so word splitting is safe
      for f in ${BK_FILES[$id]:-}; do
        if [[ $f != "$id.sha256" ]]; then rest+=("$f"); fi
      done
    done
    dest_rm "${rest[@]}" || true
    left=$(dest_list) || fail $EX_PRUNE "cannot list the destination after deleting"
    present=()
    while IFS= read -r f; do present[$f]=1; done <<<"$left"
    for id in "${doomed[@]}"; do
      local ok=1
      for f in ${BK_FILES[$id]:-}; do
        if [[ -v "present[$f]" ]]; then ok=0; fi
      done
      if ((ok)); then pruned+=("$id"); else failed+=("$id"); fi
    done
    info "pruned ${#pruned[@]} backup(s): ${pruned[*]}"
  fi
  field_list kept "${kept[@]}"
  field_list pruned "${pruned[@]}"
  field_list incomplete "${BK_INCOMPLETE[@]}"
  if ((${#failed[@]})); then
    BK_PRUNE_FAILED="${failed[*]}"
    return 1
  fi
  return 0
}

# ---------------------------------------------------------------------------
# checksums: <id>.sha256 is `sha256sum` output for the data file and the
# manifest (names relative to the backup's directory); `sha256sum -c` checks it.

write_sha256() { # dir id datafile-name
  (cd "$1" && sha256sum -- "$3" "$2.manifest" >"$2.sha256.tmp" && mv -- "$2.sha256.tmp" "$2.sha256")
}

# check_sha256 DIR ID: every file listed in ID.sha256 exists and matches, and
# the list names exactly the data file and the manifest.
check_sha256() {
  local dir=$1 id=$2 out
  [[ -s $dir/$id.sha256 ]] || { echo "$id.sha256 is missing or empty"; return 1; }
  local n
  n=$(grep -c . "$dir/$id.sha256" || true)
  [[ $n -eq 2 ]] || { echo "$id.sha256 lists $n files, expected 2"; return 1; }
  out=$(cd "$dir" && sha256sum --strict --quiet -c -- "$id.sha256" 2>&1) || {
    echo "checksum mismatch: $(tr '\n' ' ' <<<"$out")"
    return 1
  }
}

sha_of() { # dir file -> hex (from the .sha256 list)
  local h f
  while read -r h f; do
    [[ ${f#\*} == "$2" ]] && { printf '%s\n' "$h"; return 0; }
  done <"$1"
  return 1
}

# manifest_get FILE KEY: the value of a "KEY<TAB>VALUE" line
manifest_get() {
  local k v
  while IFS=$'\t' read -r k v; do
    [[ $k == "$2" ]] && { printf '%s\n' "$v"; return 0; }
  done <"$1"
  return 1
}

# ---------------------------------------------------------------------------
# staging (hand-off between the dump container and the store container):
# $BACKUP_WORK_DIR/staged/ holds exactly one verified backup: <id>.<ext>,
# <id>.manifest, <id>.sha256, and "meta" (KEY<TAB>VALUE: id, ext, start,
# event). Files only arrive there after verification passed.

staged_dir() { printf '%s\n' "$BACKUP_WORK_DIR/staged"; }

# store_staged PREFIX EXT: checksum the staged backup, upload it, prune.
store_staged() {
  local prefix=$1 ext=$2 sd id meta_ext
  sd=$(staged_dir)
  stage store "from $sd to $BK_DEST_DESC"
  [[ -f $sd/meta ]] || fail $EX_CONFIG "no staged backup in $sd (did the dump step succeed?)"
  id=$(manifest_get "$sd/meta" id) || fail $EX_CONFIG "staged meta has no id"
  meta_ext=$(manifest_get "$sd/meta" ext) || meta_ext=
  [[ $meta_ext == "$ext" ]] || fail $EX_CONFIG "staged backup $id is a .$meta_ext, expected .$ext"
  [[ $id == "$prefix-"* ]] || fail $EX_CONFIG "staged backup $id does not belong to prefix $prefix"
  field_str backup "$id"
  if [[ $BK_PHASE == store ]]; then
    local ds; ds=$(manifest_get "$sd/meta" start) && field_str dump_start "$ds"
    local v; for v in tables rows keys; do
      manifest_get "$sd/$id.manifest" "$v" >/dev/null 2>&1 && field_num "$v" "$(manifest_get "$sd/$id.manifest" "$v")"
    done
  fi
  [[ -f $sd/$id.$ext ]] || fail $EX_CONFIG "staged backup file $id.$ext is missing"
  field_num bytes "$(stat -c %s -- "$sd/$id.$ext")"
  local why
  why=$(check_sha256 "$sd" "$id") || fail $EX_CHECKSUM "staged backup $id: $why"
  field_str checksum "sha256:$(sha_of "$sd/$id.sha256" "$id.$ext")"
  # it was verified by the dump step (files only reach staged/ after that)
  field_bool verified true

  dest_check_writable
  list_backups "$prefix"
  if [[ -n $(files_of "$id") ]]; then
    fail $EX_DEST "backup $id already exists in $BK_DEST_DESC; refusing to overwrite"
  fi
  local f
  for f in "$id.$ext" "$id.manifest" "$id.sha256"; do
    if ! dest_put "$sd/$f" "$f"; then
      why=$(tail_of "$BK_RUN/put.err")
      # remove what this run uploaded (never anything else): these names did
      # not exist before this run
      local g; for g in "$id.sha256" "$id.manifest" "$id.$ext"; do
        [[ $g == "$f" && $BACKUP_DEST == gcs ]] && continue
        dest_rm "$g" 2>/dev/null || true
      done
      fail $EX_DEST "cannot write $f to $BK_DEST_DESC${why:+: $why}"
    fi
  done
  if [[ $BACKUP_DEST == pvc ]]; then
    # read back what landed on the volume
    why=$(check_sha256 "$BACKUP_DIR" "$id") || {
      dest_rm "$id.sha256" || true
      fail $EX_DEST "stored backup $id does not match its checksum after writing: $why"
    }
  fi
  info "stored $id"
  field_bool stored true

  stage prune
  prune "$prefix" "$id" || fail $EX_PRUNE "could not delete: $BK_PRUNE_FAILED (the new backup $id is stored)"
}

# fetch_newest PREFIX EXT DIR [ID]: download backup ID (default: the newest
# complete one) into DIR and check its sha256. Prints the id.
fetch_backup() {
  local prefix=$1 ext=$2 dir=$3 want=${4:-} id why f
  dest_check_readable
  list_backups "$prefix"
  if [[ -n $want ]]; then
    id=
    for f in "${BK_IDS[@]}"; do [[ $f == "$want" ]] && id=$f; done
    [[ -n $id ]] || fail $EX_DEST "backup $want not found (complete backups of $prefix in $BK_DEST_DESC: ${#BK_IDS[@]})"
  else
    ((${#BK_IDS[@]})) || fail $EX_DEST "no complete backup of $prefix in $BK_DEST_DESC"
    id=${BK_IDS[0]}
  fi
  field_str backup "$id"
  mkdir -p "$dir"
  for f in "$id.sha256" "$id.manifest" "$id.$ext"; do
    dest_get "$f" "$dir/$f" || {
      why=$(tail_of "$BK_RUN/get.err")
      fail $EX_DEST "cannot fetch $f from $BK_DEST_DESC${why:+: $why}"
    }
  done
  field_num bytes "$(stat -c %s -- "$dir/$id.$ext")"
  why=$(check_sha256 "$dir" "$id") || fail $EX_CHECKSUM "backup $id: $why"
  field_str checksum "sha256:$(sha_of "$dir/$id.sha256" "$id.$ext")"
  field_bool checksum_ok true
  BK_FETCHED=$id
}

# ---------------------------------------------------------------------------
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
  scratch_pg_restore verify --exit-on-error "$dump" 2>"$BK_RUN/restore.err" ||
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

# ---------------------------------------------------------------------------
# Redis helpers

redis_tools_init() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || fail $EX_CONFIG "$t not found on PATH (run in the redis image)"
  done
}

# redis-check-rdb FILE: fields keys/expires/already_expired into globals
rdb_check() {
  local rdb=$1 out
  [[ -s $rdb ]] || { echo "RDB file is empty (0 bytes)"; return 1; }
  out=$(redis-check-rdb "$rdb" 2>&1) || {
    echo "redis-check-rdb: $(grep -E 'ERROR|error|Error|Unexpected|Wrong|Bad|fail' <<<"$out" | tail -n 3 | tr '\n' ' ')"
    return 1
  }
  grep -q 'RDB looks OK' <<<"$out" || { echo "redis-check-rdb did not report the RDB as OK"; return 1; }
  RDB_KEYS=$(sed -n 's/^\[info\] \([0-9]*\) keys read$/\1/p' <<<"$out")
  RDB_EXPIRES=$(sed -n 's/^\[info\] \([0-9]*\) expires$/\1/p' <<<"$out")
  RDB_ALREADY_EXPIRED=$(sed -n 's/^\[info\] \([0-9]*\) already expired$/\1/p' <<<"$out")
  [[ $RDB_KEYS =~ ^[0-9]+$ ]] || { echo "cannot read the key count from redis-check-rdb"; return 1; }
  RDB_EXPIRES=${RDB_EXPIRES:-0} RDB_ALREADY_EXPIRED=${RDB_ALREADY_EXPIRED:-0}
}

# scratch_redis_start RDB: a redis-server on a private Unix socket that loads
# RDB. Sets SCRATCH_REDIS_SOCK. Fails (EX_VERIFY) when the server does not
# come up with the data loaded.
scratch_redis_start() {
  local rdb=$1 d="$BK_RUN/redis" pid reply
  mkdir -p "$d"
  cp -- "$rdb" "$d/dump.rdb"
  redis-server --port 0 --unixsocket "$d/redis.sock" --unixsocketperm 700 --dir "$d" \
    --dbfilename dump.rdb --save '' --appendonly no --daemonize no --logfile "$d/redis.log" &
  pid=$!
  on_exit_do "kill $pid; wait $pid"
  local limit=${BACKUP_SCRATCH_TIMEOUT:-1800} t0=$SECONDS
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      fail $EX_VERIFY "scratch redis-server could not load the RDB: $(grep -iE 'error|bad|short|wrong|fail' "$d/redis.log" | tail -n 3 | tr '\n' ' ')"
    fi
    # PONG once the data set is loaded ("LOADING ..." before)
    reply=$(redis-cli -s "$d/redis.sock" ping 2>/dev/null || true)
    [[ $reply == PONG ]] && break
    ((SECONDS - t0 < limit)) || fail $EX_VERIFY "scratch redis-server did not finish loading in ${limit}s"
    sleep 0.1
  done
  SCRATCH_REDIS_SOCK="$d/redis.sock"
}

# keyspace_sum < INFO keyspace output: the number of keys over all databases
keyspace_sum() {
  local total=0 line
  while IFS= read -r line; do
    if [[ ${line%$'\r'} =~ ^db[0-9]+:keys=([0-9]+) ]]; then total=$((total + BASH_REMATCH[1])); fi
  done
  printf '%s\n' "$total"
}
