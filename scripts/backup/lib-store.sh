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

