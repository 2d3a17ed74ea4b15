#!/usr/bin/env bash
# Builds the Kubernetes control plane that the k8s test suites run as plain loopback processes
# (no Docker): kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok and helm,
# each from its upstream source on the Go module proxy at a pinned version. Only what is missing is
# built, so a second run is a no-op.
#
#   hack/k8s-tools.sh           build what is missing, print the bin dir on the last line
#   BREAKWATER_K8S_BIN=dir      use (and fill) that folder instead of the versioned cache
#
# Without Go, point BREAKWATER_K8S_BIN at a folder of prebuilt binaries (for example the one
# `setup-envtest use -p path` prints, plus kube-controller-manager, kube-scheduler, kwok and helm).
set -euo pipefail

# 1.35 rather than the newest minor: kwok v0.7.0 (the last release with built-in stages) and helm v3
# are built against older client libraries, and one minor of skew is the well-trodden path.
K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.16 # the 3.6 line is what k8s 1.35 links as its etcd client
KWOK_VERSION=v0.7.0  # v0.8 dropped the built-in node/pod stages
HELM_VERSION=v3.22.0

BIN=${BREAKWATER_K8S_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/breakwater/k8s/$K8S_VERSION}
TOOLS=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kwok helm)

# A binary we built records its pinned version next to it, so bumping a pin rebuilds it. A binary
# without that record was put there by hand (BREAKWATER_K8S_BIN) and is taken as it is.
pinned_version() {
  case $1 in
    etcd) echo "$ETCD_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    *) echo "$K8S_VERSION" ;;
  esac
}
is_current() {
  [[ -x $BIN/$1 ]] || return 1
  [[ ! -f $BIN/.$1.version ]] || [[ $(<"$BIN/.$1.version") == "$(pinned_version "$1")" ]]
}

find_missing() {
  missing=()
  local t
  for t in "${TOOLS[@]}"; do is_current "$t" || missing+=("$t"); done
  if ((${#missing[@]} == 0)); then
    echo "k8s-tools: all ${#TOOLS[@]} tools present in $BIN, nothing to build" >&2
    echo "$BIN"
    exit 0
  fi
}
find_missing

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<EOF
k8s-tools: missing in $BIN: ${missing[*]}
k8s-tools: building them needs Go (>= 1.26), which is not on PATH.
Either install Go, or set BREAKWATER_K8S_BIN=dir to a folder that already holds these binaries
(kube-apiserver, etcd and kubectl come from e.g. \`setup-envtest use -p path\`; add
kube-controller-manager, kube-scheduler, kwok and helm from their releases).
The Kubernetes suites cannot run without them; they are not skipped.
EOF
  exit 1
fi

mkdir -p "$BIN"
# Test runs started side by side (make, a vitest globalSetup) must not build into the same folder at
# once: the second one waits, then finds everything present.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$BIN/.lock"
  flock 9
  find_missing
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/breakwater-k8s-tools.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# Binaries are built here and renamed into place, so a reader never sees half a file.
OUT=$BIN/.staging
mkdir -p "$OUT"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

# The module proxy serves k8s.io/kubernetes, but its go.mod requires every staging module at v0.0.0
# and maps them to ./staging, which consumers ignore. A wrapper module replaces each one with its
# published v0.<minor>.<patch> tag; the list comes from the pinned go.mod so it follows new releases.
k8s_wrapper() {
  local dir=$WORK/k8s staging gomod
  [[ -f $dir/go.mod ]] && { echo "$dir"; return; }
  staging=v0.${K8S_VERSION#v1.}
  mkdir -p "$dir"
  (
    cd "$dir"
    go mod init breakwater.local/k8s-bins >/dev/null 2>&1
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    [[ -f $gomod ]] || { echo "k8s-tools: could not download k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
    local m
    while read -r m; do
      go mod edit -replace="$m=$m@$staging"
    done < <(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod")
    go mod edit -go="$(awk '$1 == "go" {print $2; exit}' "$gomod")"
    local gd
    gd=$(awk '$1 == "godebug" {print $2; exit}' "$gomod")
    [[ -z $gd ]] || go mod edit -godebug="$gd"
    go get "k8s.io/kubernetes@$K8S_VERSION" >&2
  ) || return 1
  echo "$dir"
}

build_k8s() {
  local name=$1 dir now minor ldf p
  dir=$(k8s_wrapper)
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  minor=$(cut -d. -f2 <<<"$K8S_VERSION")
  # What upstream's hack/lib/version.sh stamps; without it the binaries report v0.0.0 and helm and
  # kubectl see a server with no version.
  ldf="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldf+=" -X $p.gitTreeState=clean -X $p.buildDate=$now"
  done
  (cd "$dir" && go build -p 2 -trimpath -tags selinux,notest -ldflags "$ldf" -o "$OUT/$name" "k8s.io/kubernetes/cmd/$name")
}

# etcd's server module replaces its sibling modules with relative paths, so `go install` refuses it;
# as a dependency of a wrapper those replaces are ignored and the siblings resolve at the same tag.
build_etcd() {
  local dir=$WORK/etcd
  mkdir -p "$dir"
  (
    cd "$dir"
    go mod init breakwater.local/etcd-bin >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
  )
}

build_kwok() {
  GOBIN=$OUT go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

# helm's Makefile stamps its version and the Kubernetes version of its client-go (else `helm template`
# and `helm lint` assume Kubernetes 1.20); read that from helm's own go.mod like the Makefile does.
build_helm() {
  local gomod kmin ldf
  gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  kmin=$(awk '$1 == "k8s.io/client-go" {split($2, v, "."); print v[2]; exit}' "$gomod")
  ldf="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldf+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  ldf+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kmin"
  ldf+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kmin"
  GOBIN=$OUT go install -trimpath -ldflags "$ldf" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# Sequential on purpose: linking kube-apiserver alone keeps two cores busy.
report=()
total_start=$SECONDS
for t in "${missing[@]}"; do
  echo "k8s-tools: building $t $(pinned_version "$t") into $BIN" >&2
  start=$SECONDS
  case $t in
    etcd) build_etcd ;;
    kwok) build_kwok ;;
    helm) build_helm ;;
    *) build_k8s "$t" ;;
  esac
  mv -f "$OUT/$t" "$BIN/$t"
  pinned_version "$t" >"$BIN/.$t.version"
  report+=("$(printf '  %-24s %-9s %4ds' "$t" "$(pinned_version "$t")" $((SECONDS - start)))")
  echo "k8s-tools: built $t in $((SECONDS - start))s" >&2
done
rmdir "$OUT" 2>/dev/null || true

{
  echo "k8s-tools: built ${#missing[@]} of ${#TOOLS[@]} tools in $((SECONDS - total_start))s into $BIN"
  printf '%s\n' "${report[@]}"
  "$BIN/kube-apiserver" --version
} >&2
echo "$BIN"
