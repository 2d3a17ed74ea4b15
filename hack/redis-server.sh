#!/usr/bin/env bash
# Prints the path of a redis-server binary for the Redis delivery store's tests, installing Debian's
# redis-server package first when there is none: CI starts on a fresh machine. The tests start their
# own server on a free loopback port (test/support/redis.ts); the system service, if any, is not used.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  echo "redis-server not found: installing Debian's redis-server package" >&2
  $sudo apt-get install -y --no-install-recommends redis-server >&2 ||
    { $sudo apt-get update >&2 && $sudo apt-get install -y --no-install-recommends redis-server >&2; }
fi
command -v redis-server
