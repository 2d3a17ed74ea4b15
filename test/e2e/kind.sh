#!/usr/bin/env bash
# End to end on a real cluster, for machines with Docker: a kind cluster, the image built from this
# checkout, the chart, a misbehaving vendor and an annotated app. Checks that the sidecar is injected
# and that retries and the circuit breaker do what the ExternalIntegration says.
#
#   test/e2e/kind.sh              create the cluster, run, delete the cluster
#   KEEP_CLUSTER=1 test/e2e/kind.sh   leave it running to poke at (kind delete cluster --name breakwater-e2e)
#
# Needs docker, kind, kubectl and helm on PATH.
set -euo pipefail

CLUSTER=${CLUSTER:-breakwater-e2e}
IMAGE=${IMAGE:-breakwater:e2e}
NODE_IMAGE=node:24-bookworm-slim
SYSTEM_NS=breakwater-system
APP_NS=breakwater-e2e
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MANIFESTS=$ROOT/test/e2e/manifests

step() { printf '\n== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  kubectl -n "$SYSTEM_NS" logs -l app.kubernetes.io/name=breakwater --tail=50 >&2 || true
  kubectl -n "$APP_NS" logs deploy/demo -c breakwater --tail=50 >&2 || true
  exit 1
}

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind.sh needs $tool on PATH" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "kind.sh needs a running Docker engine (docker info fails)" >&2; exit 1; }

cleanup() {
  if [[ -z ${KEEP_CLUSTER:-} ]]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

step "kind cluster $CLUSTER"
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
kubectl config use-context "kind-$CLUSTER" >/dev/null

step "image $IMAGE"
docker build -t "$IMAGE" "$ROOT"
# The vendor and the app run on the build's base image, so the cluster pulls nothing.
docker image inspect "$NODE_IMAGE" >/dev/null 2>&1 || docker pull "$NODE_IMAGE"
kind load docker-image --name "$CLUSTER" "$IMAGE" "$NODE_IMAGE"

step "helm install"
helm upgrade --install breakwater "$ROOT/charts/breakwater" -n "$SYSTEM_NS" --create-namespace \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
  --wait --timeout 3m
# The operator patches its caBundle in once its certificate exists.
for _ in $(seq 60); do
  [[ -n $(kubectl get mutatingwebhookconfiguration breakwater -o jsonpath='{.webhooks[0].clientConfig.caBundle}') ]] && break
  sleep 1
done
[[ -n $(kubectl get mutatingwebhookconfiguration breakwater -o jsonpath='{.webhooks[0].clientConfig.caBundle}') ]] ||
  fail "the operator did not patch the webhook's caBundle"

step "vendor, integration and annotated app in $APP_NS"
kubectl create namespace "$APP_NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$APP_NS" apply -f "$MANIFESTS/vendor.yaml" -f "$MANIFESTS/integration.yaml"
kubectl -n "$APP_NS" wait --for=condition=Ready xi/vendor --timeout=60s
kubectl -n "$APP_NS" rollout status deploy/vendor --timeout=120s
kubectl -n "$APP_NS" apply -f "$MANIFESTS/demo-app.yaml"
kubectl -n "$APP_NS" rollout status deploy/demo --timeout=120s

step "sidecar injected"
pod=$(kubectl -n "$APP_NS" get pod -l app=demo -o jsonpath='{.items[0].metadata.name}')
containers=$(kubectl -n "$APP_NS" get pod "$pod" -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}')
[[ " $containers " == *" breakwater "* ]] || fail "pod $pod has no breakwater container: $containers"
kubectl -n "$APP_NS" get pod "$pod" -o jsonpath='{.metadata.annotations.breakwater\.dev/status}' | grep -q vendor ||
  fail "pod $pod has no breakwater.dev/status annotation naming the integration"
env_url=$(kubectl -n "$APP_NS" exec "$pod" -c app -- printenv BREAKWATER_VENDOR_URL) ||
  fail "BREAKWATER_VENDOR_URL is not set in the app container"
echo "pod $pod: containers [$containers], BREAKWATER_VENDOR_URL=$env_url"

# One call from inside the app container; prints "<status> <x-breakwater-attempts> <body>".
call() {
  kubectl -n "$APP_NS" exec "$pod" -c app -- node -e '
    const res = await fetch(process.argv[1]);
    console.log(res.status, res.headers.get("x-breakwater-attempts") ?? "-", (await res.text()).replace(/\s+/g, " "));
  ' "$1"
}
vendor() { kubectl -n "$APP_NS" exec "$pod" -c app -- node -e 'console.log((await (await fetch(process.argv[1])).text()).trim())' "http://vendor:8080/admin/$1"; }
expect() { # expect <what> <regex> <actual>
  [[ $3 =~ $2 ]] || fail "$1: expected /$2/, got: $3"
  echo "ok  $1: $3"
}

step "healthy vendor"
for _ in $(seq 30); do out=$(call "$env_url/v1/ping") && [[ $out == 200* ]] && break; sleep 1; done
expect "healthy call" '^200 1 ' "$out"

step "flaky vendor: two failures, then success on the third attempt"
vendor "mode?m=flaky" >/dev/null
expect "flaky call" '^200 3 ' "$(call "$env_url/v1/ping")"

step "vendor down: retries exhausted, then the breaker opens"
vendor "mode?m=down" >/dev/null
expect "first failing call" '^503 3 ' "$(call "$env_url/v1/ping")"
hits_before=$(vendor hits)
expect "breaker open" '^503 .*circuit_open' "$(call "$env_url/v1/ping")"
[[ $(vendor hits) == "$hits_before" ]] || fail "a call reached the vendor while the breaker was open"
echo "ok  the open breaker kept the call off the vendor ($hits_before hits before and after)"

step "vendor back: the breaker closes after halfOpenAfter"
vendor "mode?m=ok" >/dev/null
for _ in $(seq 20); do out=$(call "$env_url/v1/ping") && [[ $out == 200* ]] && break; sleep 1; done
expect "call after recovery" '^200 1 ' "$out"

metrics=$(kubectl -n "$APP_NS" exec "$pod" -c app -- node -e 'console.log(await (await fetch("http://127.0.0.1:15090/metrics")).text())')
grep -E '^breakwater_circuit_transitions_total\{.*integration="vendor"' <<<"$metrics" >/dev/null ||
  fail "the sidecar's /metrics shows no breaker transitions for vendor"
echo "ok  /metrics counts the breaker transitions"

step "e2e passed"
