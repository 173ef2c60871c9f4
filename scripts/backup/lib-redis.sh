# shellcheck shell=bash
# Backup scripts: Redis tools, redis-check-rdb and the scratch redis-server.
# Sourced by lib.sh (see there and README.md).

# Redis helpers

redis_tools_init() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || fail $EX_CONFIG "$t not found on PATH (run in the redis image)"
  done
}

# redis-check-rdb FILE: fields keys/expires/already_expired into globals.
# Fails (message on stdout) on a damaged RDB and on one without a CRC64.
rdb_check() {
  local rdb=$1 out
  [[ -s $rdb ]] || { echo "RDB file is empty (0 bytes)"; return 1; }
  out=$(redis-check-rdb "$rdb" 2>&1) || {
    echo "redis-check-rdb: $(grep -E 'ERROR|error|Error|Unexpected|Wrong|Bad|fail' <<<"$out" | tail -n 3 | tr '\n' ' ')"
    return 1
  }
  grep -q 'RDB looks OK' <<<"$out" || { echo "redis-check-rdb did not report the RDB as OK"; return 1; }
  # an RDB saved with rdbchecksum no carries no CRC64: redis-check-rdb then
  # checks only its structure, and a changed byte in a value passes. Refuse
  # rather than call it verified.
  if grep -q 'checksum disabled' <<<"$out"; then
    echo "the RDB carries no checksum (the server runs with rdbchecksum no), so its content cannot be verified; start the server with rdbchecksum yes (the default)"
    return 1
  fi
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
