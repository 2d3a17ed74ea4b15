#!/usr/bin/env bash
# Builds the benchmark's peers, Dapr's daprd and Traefik, from their source on the Go module proxy
# into a versioned cache outside the repository. Only what is missing is built, so a second run is a
# no-op. Nothing fetched or built here is ever committed.
#
#   bench/peers/build.sh             build what is missing, print the cache folder on the last line
#   bench/peers/build.sh traefik     only that peer (daprd or traefik)
#   BREAKWATER_PEERS_DIR=dir         use (and fill) that folder instead of the cache
#
# Each binary lands at <dir>/<name>-<version>/<name>, where the benchmark looks for it; both read the
# versions from versions.env.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$HERE/versions.env"

DIR=${BREAKWATER_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/breakwater/peers}
ALL=(daprd traefik)
PEERS=("${@:-${ALL[@]}}")

version_of() {
  case $1 in
    daprd) echo "$DAPRD_VERSION" ;;
    traefik) echo "$TRAEFIK_VERSION" ;;
    *) echo "peers: unknown peer '$1' (known: ${ALL[*]})" >&2; return 1 ;;
  esac
}
for p in "${PEERS[@]}"; do version_of "$p" >/dev/null; done
bin_of() { echo "$DIR/$1-$(version_of "$1")/$1"; }
# A binary records the version it was built from next to it; one without that record, or with
# another version, is rebuilt.
is_current() {
  local b
  b=$(bin_of "$1")
  [[ -x $b && -f $b.version && $(<"$b.version") == "$(version_of "$1")" ]]
}

find_missing() {
  missing=()
  local p
  for p in "${PEERS[@]}"; do is_current "$p" || missing+=("$p"); done
  if ((${#missing[@]} == 0)); then
    echo "peers: ${PEERS[*]} present in $DIR, nothing to build" >&2
    echo "$DIR"
    exit 0
  fi
}
find_missing

if ! command -v go >/dev/null 2>&1; then
  echo "peers: missing in $DIR: ${missing[*]}; building them needs Go (>= 1.25) on PATH" >&2
  exit 1
fi

mkdir -p "$DIR"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$DIR/.lock"
  flock 9
  find_missing
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/breakwater-peers.XXXXXX")
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod

# `go install` refuses both modules because their go.mod has replace lines, so each is built inside a
# writable copy of its downloaded module, with its own go.mod and go.sum.
module_copy() {
  local module=$1 version=$2 into=$3 src
  src=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  [[ -d $src ]] || { echo "peers: could not download $module@$version" >&2; return 1; }
  cp -r "$src" "$into"
  chmod -R u+w "$into"
}

build_daprd() {
  local src=$WORK/dapr out=$1
  module_copy github.com/dapr/dapr "$DAPRD_VERSION" "$src"
  (cd "$src" && go build -trimpath -tags stablecomponents \
    -ldflags "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=${DAPRD_VERSION#v}" \
    -o "$out" ./cmd/daprd)
}

# Two gaps in the 3.7 module as the proxy serves it, neither on the benchmark's path:
# - the go-http-auth fork commit it pins is not served; the commit 3.6 pins is, and only basic and
#   digest auth use it;
# - its nested dynamic/ext module is left out of the module zip; upstream's is two empty structs that
#   other builds of Traefik extend.
build_traefik() {
  local src=$WORK/traefik out=$1
  module_copy github.com/traefik/traefik/v3 "$TRAEFIK_VERSION" "$src"
  mkdir -p "$src/pkg/config/dynamic/ext"
  printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24.0\n' >"$src/pkg/config/dynamic/ext/go.mod"
  printf 'package ext\n\ntype HTTP struct{}\n\ntype Router struct{}\n' >"$src/pkg/config/dynamic/ext/ext.go"
  (cd "$src" && go mod edit \
    -replace=github.com/abbot/go-http-auth=github.com/containous/go-http-auth@v0.4.1-0.20200324110947-a37a7636d23e)
  (cd "$src" && go build -trimpath \
    -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${TRAEFIK_VERSION#v}" \
    -o "$out" ./cmd/traefik)
}

report=()
total_start=$SECONDS
for p in "${missing[@]}"; do
  v=$(version_of "$p")
  b=$(bin_of "$p")
  echo "peers: building $p $v into $(dirname "$b")" >&2
  start=$SECONDS
  mkdir -p "$(dirname "$b")"
  # Built beside its final place and renamed into it, so a reader never sees half a file.
  "build_$p" "$b.partial"
  mv -f "$b.partial" "$b"
  echo "$v" >"$b.version"
  report+=("$(printf '  %-8s %-9s %4ds' "$p" "$v" $((SECONDS - start)))")
  echo "peers: built $p in $((SECONDS - start))s" >&2
done
{
  echo "peers: built ${#missing[@]} of ${#PEERS[@]} in $((SECONDS - total_start))s into $DIR"
  printf '%s\n' "${report[@]}"
} >&2
echo "$DIR"
