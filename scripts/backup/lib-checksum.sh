# shellcheck shell=bash
# Backup scripts: sha256 lists and manifests.
# Sourced by lib.sh (see there and README.md).

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

