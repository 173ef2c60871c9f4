#!/bin/sh
# docker-entrypoint.sh of the localhost-built redis image (scripts/node/data-images): written here
# to behave like the official image's entrypoint (README.md beside it):
#   redis-server [config file] [--option value…]   as user redis (gosu when started as root),
#       umask 0077, and `protected-mode no` unless the config file sets protected-mode (the official
#       image compiles that default in; Debian's redis-server keeps the upstream default, yes)
#   a first argument that is an option (-…) or a config file (*.conf) means redis-server
#   anything else is exec'd as given (redis-cli, bash …)
set -eu

case ${1:-} in -*|*.conf) set -- redis-server "$@" ;; esac

if [ "${1:-}" = redis-server ]; then
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis: {} +
    exec gosu redis "$0" "$@"
  fi
  [ "$(umask)" = 0022 ] && umask 0077
  shift
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    conf=$1; shift
    if grep -qiE '^[[:space:]]*protected-mode[[:space:]]' "$conf" 2>/dev/null; then
      set -- redis-server "$conf" "$@"
    else
      set -- redis-server "$conf" --protected-mode no "$@"
    fi
  else
    set -- redis-server --protected-mode no "$@"
  fi
fi

exec "$@"
