# shellcheck shell=bash
# Backup scripts: the destination seam (pvc | gcs), listing backups, staging, store and fetch.
# Sourced by lib.sh (see there and README.md).

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
# dest_check_writable PREFIX: on pvc, also removes the temporary files of
# killed runs (older than BACKUP_STALE_HOURS) and checks for room: a probe
# with real data (creating an empty file succeeds on a full volume) and free
# space at least the size of the newest complete backup of PREFIX.
dest_check_writable() {
  local prefix=$1
  dest_check_readable
  [[ $BACKUP_DEST == pvc ]] || return 0
  remove_stale_temps "$prefix"
  local probe
  probe=$(mktemp "$BACKUP_DIR/.write-probe.XXXXXX" 2>/dev/null) || fail $EX_DEST "destination $BACKUP_DIR is not writable"
  on_exit_do "rm -f -- $(printf %q "$probe")"
  if ! { head -c 65536 /dev/zero >"$probe" && sync -- "$probe"; } 2>"$BK_RUN/probe.err"; then
    rm -f -- "$probe"
    fail $EX_DEST "destination $BACKUP_DIR is full or not writable: $(tail_of "$BK_RUN/probe.err" 1)"
  fi
  rm -f -- "$probe"
  local need=0 avail f
  list_backups "$prefix"
  if ((${#BK_IDS[@]})); then
    while IFS= read -r f; do
      [[ -n $f ]] && need=$((need + $(stat -c %s -- "$BACKUP_DIR/$f" 2>/dev/null || echo 0)))
    done <<<"$(files_of "${BK_IDS[0]}")"
  fi
  avail=$(df -B1 --output=avail -- "$BACKUP_DIR" 2>/dev/null | tail -n 1 | tr -d ' ') || avail=
  if [[ $avail =~ ^[0-9]+$ ]] && ((avail < need)); then
    fail $EX_DEST "destination $BACKUP_DIR is full: $avail bytes free, the last backup ${BK_IDS[0]} took $need"
  fi
}

# remove_stale_temps PREFIX (pvc): hidden temporary files of PREFIX's runs
# that have not been written to for BACKUP_STALE_HOURS belong to runs that
# were killed (SIGKILL: no trap runs); a running upload writes to its file.
remove_stale_temps() {
  local prefix=$1 h f
  stale_hours
  h=$BK_STALE_HOURS
  while IFS= read -r -d '' f; do
    if rm -f -- "$f"; then
      BK_LEFTOVERS+=("${f##*/}")
      info "removed ${f##*/}, left by a killed run"
    fi
  done < <(find "$BACKUP_DIR" -maxdepth 1 -type f \( -name ".$prefix-[0-9]*.part" -o -name '.write-probe.*' \) -mmin +$((h * 60)) -print0 2>/dev/null)
  field_list leftovers "${BK_LEFTOVERS[@]}"
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

# dest_put SRC NAME: create NAME from SRC, only if NAME does not exist, in
# one atomic step of the store itself (no check-then-write):
#   pvc: written to a temporary file of this run's own (.NAME.XXXXXX.part),
#        fsynced, then hard-linked to NAME: link(2) fails if NAME exists;
#   gcs: `gcloud storage cp --if-generation-match=0`: the bucket creates the
#        object only if there is none (HTTP 412 otherwise). (--no-clobber is
#        a check before the upload, not a precondition.)
# Names this run created are appended to BK_CREATED.
BK_CREATED=()
dest_put() {
  local src=$1 name=$2
  : >"$BK_RUN/put.err"
  if [[ $BACKUP_DEST == pvc ]]; then
    local tmp
    tmp=$(mktemp --suffix=.part "$BACKUP_DIR/.$name.XXXXXX" 2>"$BK_RUN/put.err") || return 1
    on_exit_do "rm -f -- $(printf %q "$tmp")"
    if bk_bg /dev/null "$BK_RUN/put.err" cp -- "$src" "$tmp" && sync -- "$tmp" 2>>"$BK_RUN/put.err" &&
       ln -T -- "$tmp" "$BACKUP_DIR/$name" 2>>"$BK_RUN/put.err"; then
      BK_CREATED+=("$name")
      rm -f -- "$tmp"
      sync -- "$BACKUP_DIR" 2>/dev/null || true
      return 0
    fi
    rm -f -- "$tmp"
    return 1
  fi
  # gcloud itself is the background process, so a signal stops the upload
  : >"$BK_RUN/gcloud.err"
  if bk_bg /dev/null "$BK_RUN/gcloud.err" gcloud storage cp --if-generation-match=0 "$src" "$BACKUP_GCS_URL/$name"; then
    BK_CREATED+=("$name")
    return 0
  fi
  cp "$BK_RUN/gcloud.err" "$BK_RUN/put.err"
  return 1
}

# dest_get NAME DST
dest_get() {
  if [[ $BACKUP_DEST == pvc ]]; then
    : >"$BK_RUN/get.err"
    bk_bg /dev/null "$BK_RUN/get.err" cp -- "$BACKUP_DIR/$1" "$2"
    return
  fi
  : >"$BK_RUN/gcloud.err"
  bk_bg /dev/null "$BK_RUN/gcloud.err" gcloud storage cp "$BACKUP_GCS_URL/$1" "$2" || { cp "$BK_RUN/gcloud.err" "$BK_RUN/get.err"; return 1; }
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

# list_backups PREFIX: sets BK_IDS to the complete backups of PREFIX (data
# file, .manifest and .sha256 all there), newest first; BK_ALL_IDS to every
# backup id with any file, newest first; BK_INCOMPLETE to ids missing one of
# the three; BK_IGNORED to names that start like PREFIX's backups
# (PREFIX-<digit>) but are not (an impossible date, another shape): never
# used, never deleted, reported; and BK_LISTING to the raw listing. Fails
# (EX_DEST) when the destination cannot be listed. Runs in the current shell
# (no subshell), so a failure can never look like an empty destination.
list_backups() {
  local prefix=$1 name rest id ext
  local -A sha=() man=() data=() seen=()
  BK_FILES=()
  if ! BK_LISTING=$(dest_list); then
    local why; why=$(tail_of "$BK_RUN/gcloud.err")
    fail $EX_DEST "cannot list the destination $BK_DEST_DESC${why:+: $why}"
  fi
  BK_INCOMPLETE=()
  BK_IDS=()
  BK_ALL_IDS=()
  BK_IGNORED=()
  while IFS= read -r name; do
    [[ $name == "$prefix-"* ]] || continue
    rest=${name#"$prefix-"}
    if [[ $rest =~ ^([0-9]{8}T[0-9]{6}Z(-[0-9a-f]{8})?)\.(dump|rdb|manifest|sha256)$ ]] &&
       id="$prefix-${BASH_REMATCH[1]}" && ext=${BASH_REMATCH[3]} && valid_ts "${rest:0:16}"; then
      seen[$id]=1
      BK_FILES[$id]+="$name"$'\n'
      case $ext in
        sha256) sha[$id]=1 ;;
        manifest) man[$id]=1 ;;
        *) data[$id]=1 ;;
      esac
    elif [[ $rest == [0-9]* ]]; then
      BK_IGNORED+=("$name")
    fi
  done <<<"$BK_LISTING"
  local -a complete=()
  for id in "${!seen[@]}"; do
    if [[ -v "sha[$id]" && -v "man[$id]" && -v "data[$id]" ]]; then complete+=("$id"); else BK_INCOMPLETE+=("$id"); fi
  done
  if ((${#complete[@]})); then
    mapfile -t BK_IDS < <(printf '%s\n' "${complete[@]}" | LC_ALL=C sort -r)
  fi
  if ((${#seen[@]})); then
    mapfile -t BK_ALL_IDS < <(printf '%s\n' "${!seen[@]}" | LC_ALL=C sort -r)
    mapfile -t BK_INCOMPLETE < <(printf '%s\n' "${BK_INCOMPLETE[@]}" | LC_ALL=C sort -r | grep . || true)
  fi
  if ((${#BK_IGNORED[@]})); then
    info "not backups of $prefix (ignored, never deleted): ${BK_IGNORED[*]}"
  fi
  return 0
}

declare -A BK_FILES=() # id -> its files in the destination, one a line (from list_backups)

# files_of ID: the destination names belonging to backup ID (from the last list_backups)
files_of() {
  printf '%s' "${BK_FILES[$1]:-}"
}


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

  dest_check_writable "$prefix"
  list_backups "$prefix"
  if [[ -n $(files_of "$id") ]]; then
    fail $EX_DEST "backup $id already exists in $BK_DEST_DESC; refusing to overwrite"
  fi
  # Whatever stops this run before the backup is complete (an error, a
  # signal) removes the files it created - only those: every name is
  # created exclusively (dest_put), so no other run's file is among them.
  BK_STORED=0
  on_exit_do _undo_partial_store
  local f
  for f in "$id.$ext" "$id.manifest" "$id.sha256"; do
    if ! dest_put "$sd/$f" "$f"; then
      why=$(tail_of "$BK_RUN/put.err")
      if grep -qE 'File exists|HTTPError 412|pre-?conditions?' "$BK_RUN/put.err" 2>/dev/null; then
        fail $EX_DEST "backup $id already exists in $BK_DEST_DESC ($f was created by another run); refusing to overwrite"
      fi
      fail $EX_DEST "cannot write $f to $BK_DEST_DESC${why:+: $why}"
    fi
  done
  if [[ $BACKUP_DEST == pvc ]]; then
    # read back what landed on the volume
    why=$(check_sha256 "$BACKUP_DIR" "$id") ||
      fail $EX_DEST "stored backup $id does not match its checksum after writing: $why"
  fi
  BK_STORED=1
  info "stored $id"
  field_bool stored true

  stage prune
  prune "$prefix" "$id" || fail $EX_PRUNE "could not delete: $BK_PRUNE_FAILED (the new backup $id is stored)"
  # the ok line promises the backup is there: look once more, after
  # every other run's prune that could have raced with ours
  list_backups "$prefix"
  local present=0
  for f in "${BK_IDS[@]}"; do [[ $f == "$id" ]] && present=1; done
  ((present)) ||
    fail $EX_DEST "backup $id is no longer complete in $BK_DEST_DESC after the prune (another run's retention removed it? newest complete backup: ${BK_IDS[0]:-none})"
}

_undo_partial_store() {
  ((BK_STORED == 0 && ${#BK_CREATED[@]})) || return 0
  local -a order=() n
  # .sha256 first, so nothing half-removed ever looks complete
  for n in "${BK_CREATED[@]}"; do [[ $n == *.sha256 ]] && order=("$n" "${order[@]}") || order+=("$n"); done
  dest_rm "${order[@]}" || true
  info "removed what this run had stored: ${order[*]}"
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
    if [[ ${BK_NEWEST_ONLY:-0} == 1 && ${#BK_ALL_IDS[@]} -gt 0 && ${BK_ALL_IDS[0]} != "${BK_IDS[0]:-}" ]]; then
      # the drill checks the newest backup or fails: an older one passing
      # would say nothing about the newest
      local what; what=$(files_of "${BK_ALL_IDS[0]}" | tr '\n' ' ')
      field_str backup "${BK_ALL_IDS[0]}"
      fail $EX_DEST "the newest backup ${BK_ALL_IDS[0]} is incomplete (only ${what% } in $BK_DEST_DESC: an interrupted or still running upload, or a lost file); not falling back to an older backup"
    fi
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

