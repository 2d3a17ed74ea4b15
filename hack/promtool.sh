#!/usr/bin/env bash
# Builds promtool, the checker that the alert-rule and /metrics suites run: the chart's PrometheusRule
# through `promtool test rules`, the sidecar's and the operator's exposition through
# `promtool check metrics`. Built from its upstream source on the Go module proxy at a pinned version,
# once: a second run is a no-op.
#
#   hack/promtool.sh            build it when missing, print its path on the last line
#   BREAKWATER_PROMTOOL=file    use that binary instead (for example from a Prometheus release tarball)
set -euo pipefail

# Prometheus 3.x tags its Go module v0.<major><minor>.<patch>: v0.316.0 is Prometheus 3.16.0.
PROMETHEUS_MODULE_VERSION=v0.316.0
PROMETHEUS_VERSION=3.16.0

if [[ -n ${BREAKWATER_PROMTOOL:-} ]]; then
  [[ -x $BREAKWATER_PROMTOOL ]] || { echo "promtool: BREAKWATER_PROMTOOL=$BREAKWATER_PROMTOOL is not an executable" >&2; exit 1; }
  echo "$BREAKWATER_PROMTOOL"
  exit 0
fi

BIN=${XDG_CACHE_HOME:-$HOME/.cache}/breakwater/promtool/$PROMETHEUS_MODULE_VERSION
TOOL=$BIN/promtool
[[ -x $TOOL ]] && { echo "$TOOL"; exit 0; }

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<EOF
promtool: $TOOL is missing, and building it needs Go (>= 1.26), which is not on PATH.
Either install Go, or set BREAKWATER_PROMTOOL to a promtool $PROMETHEUS_VERSION binary (it ships in
the Prometheus release tarball). The suites that need it cannot run without it; they are not skipped.
EOF
  exit 1
fi

mkdir -p "$BIN"
# Runs started side by side must not build into the same folder at once: the second one waits, then
# finds the binary in place.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$BIN/.lock"
  flock 9
  [[ -x $TOOL ]] && { echo "$TOOL"; exit 0; }
fi

echo "promtool: building promtool $PROMETHEUS_VERSION ($PROMETHEUS_MODULE_VERSION) into $BIN" >&2
start=$SECONDS
# What upstream's .promu.yml stamps, so `promtool --version` names the release it was built from.
ldf="-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION"
ldf+=" -X github.com/prometheus/common/version.Branch=HEAD"
ldf+=" -X github.com/prometheus/common/version.Revision=$PROMETHEUS_MODULE_VERSION"
# Built into a staging folder and renamed into place, so a reader never sees half a file.
STAGING=$(mktemp -d "$BIN/.staging.XXXXXX")
trap 'rm -rf "$STAGING"' EXIT
CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN=$STAGING \
  go install -p 2 -trimpath -tags netgo,builtinassets -ldflags "$ldf" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
mv -f "$STAGING/promtool" "$TOOL"
echo "promtool: built in $((SECONDS - start))s: $("$TOOL" --version 2>&1 | head -n 1)" >&2
echo "$TOOL"
