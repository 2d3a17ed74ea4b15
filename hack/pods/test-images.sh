#!/usr/bin/env bash
# The two small images the real-pod suites need besides Breakwater's own, built from this host's
# packages with no container engine or registry:
#   OUT/pause.tar    breakwater.local/pause:3.10   the sandbox image: sleeps, reaps, exits on TERM
#   OUT/busybox.tar  breakwater.local/busybox:1.36 a shell and wget, the "app" of the test pods
# Usage: hack/pods/test-images.sh OUT
set -euo pipefail
out=${1:?usage: hack/pods/test-images.sh OUT}
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=hack/oci.sh
source "$root/hack/oci.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/breakwater-test-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

# What kubernetes/build/pause does: the pod's network namespace lives as long as this process.
mkdir -p "$work/pause"
cat >"$work/pause.c" <<'C'
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  struct sigaction term = {0}, child = {0};
  term.sa_handler = stop; sigaction(SIGINT, &term, 0); sigaction(SIGTERM, &term, 0);
  child.sa_handler = reap; child.sa_flags = SA_NOCLDSTOP; sigaction(SIGCHLD, &child, 0);
  for (;;) pause();
}
C
gcc -static -Os -s -o "$work/pause/pause" "$work/pause.c"
oci_image "$out/pause.tar" breakwater.local/pause:3.10 '"Entrypoint":["/pause"],"User":"65535:65535"' "$work/pause"

mkdir -p "$work/busybox/bin" "$work/busybox/tmp"
cp /bin/busybox "$work/busybox/bin/busybox"
for applet in sh wget nc sleep cat echo ls env id date grep test; do ln -s busybox "$work/busybox/bin/$applet"; done
oci_image "$out/busybox.tar" breakwater.local/busybox:1.36 '"Entrypoint":["/bin/sh"],"Env":["PATH=/bin"],"User":"65534:65534"' "$work/busybox"
