# shellcheck shell=bash
# Backup scripts: GFS retention (restic forget semantics) and prune.
# Sourced by lib.sh (see there and README.md).

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
# retention_select DAILY WEEKLY MONTHLY < keys (the part of an id after the
# prefix: YYYYMMDDTHHMMSSZ[-<random>], one a line; only the timestamp counts,
# several keys of one second are ordered by their random part)
# prints "keep KEY" / "remove KEY" lines, newest first.
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

# remove_stale_incomplete PREFIX (after list_backups): an incomplete backup
# more than BACKUP_STALE_HOURS older than the newest complete one was left by
# a killed run (no run takes that long; the clock is not consulted): its files
# are removed and listed in BK_LEFTOVERS. Younger ones may be uploads still
# running and are only reported (BK_INCOMPLETE).
remove_stale_incomplete() {
  local prefix=$1 h newest id ts f
  ((${#BK_IDS[@]} && ${#BK_INCOMPLETE[@]})) || return 0
  stale_hours
  h=$BK_STALE_HOURS
  newest=$(ts_epoch "${BK_IDS[0]#"$prefix-"}") || return 0
  local -a still=() names=()
  for id in "${BK_INCOMPLETE[@]}"; do
    ts=$(ts_epoch "${id#"$prefix-"}") || { still+=("$id"); continue; }
    if ((newest - ts > h * 3600)); then
      mapfile -t names < <(files_of "$id" | grep .)
      if dest_rm "${names[@]}"; then
        BK_LEFTOVERS+=("${names[@]}")
        info "removed incomplete backup $id (${names[*]}), left by a killed run"
        continue
      fi
    fi
    still+=("$id")
  done
  BK_INCOMPLETE=("${still[@]}")
}

# prune PREFIX [PROTECTED_ID]: apply BACKUP_KEEP_DAILY/WEEKLY/MONTHLY
# (default 7/4/0) to the complete backups of PREFIX. PROTECTED_ID (the backup
# just stored) is never removed, whatever the policy says. A removed backup
# loses its .sha256 first (so it is never seen half-deleted as complete).
# Removes stale incomplete backups (remove_stale_incomplete). Sets fields
# kept, pruned, incomplete, ignored, leftovers. Returns non-zero when a
# delete failed.
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
  decisions=$(for id in "${BK_IDS[@]}"; do printf '%s\n' "${id#"$prefix-"}"; done | retention_select "$d" "$w" "$m") ||
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
  remove_stale_incomplete "$prefix"
  field_list kept "${kept[@]}"
  field_list pruned "${pruned[@]}"
  field_list incomplete "${BK_INCOMPLETE[@]}"
  field_list ignored "${BK_IGNORED[@]}"
  field_list leftovers "${BK_LEFTOVERS[@]}"
  if ((${#failed[@]})); then
    BK_PRUNE_FAILED="${failed[*]}"
    return 1
  fi
  return 0
}

