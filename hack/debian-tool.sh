#!/usr/bin/env bash
# Prints the path of COMMAND, installing Debian's PACKAGE first when the machine has no COMMAND: CI and
# benchmark runs start on fresh machines. Callers start their own instance on a free loopback port;
# a system service the package may bring is not used.
#
#   hack/debian-tool.sh COMMAND PACKAGE      e.g. hack/debian-tool.sh redis-server redis-server
set -euo pipefail
(($# == 2)) || { echo "usage: $0 COMMAND PACKAGE" >&2; exit 64; }
command=$1 package=$2
# Daemons live in sbin, which a non-login PATH may lack.
export PATH=$PATH:/usr/sbin:/sbin
if ! command -v "$command" >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  echo "$command not found: installing Debian's $package package" >&2
  $sudo apt-get install -y --no-install-recommends "$package" >&2 ||
    { $sudo apt-get update >&2 && $sudo apt-get install -y --no-install-recommends "$package" >&2; }
fi
command -v "$command"
