#!/usr/bin/env bash
# Undoes what a real-pods node (test/support/real-node.ts) set up under STATE, whether its run ended
# cleanly or not: pods, kubelet, containers and their shims, containerd, mounts, the pods' network
# namespaces, the kubelet's cgroups, the bridge, and what the kubelet and CNI write to fixed paths.
# Stops only processes whose pid files STATE/run holds, and shims that name STATE's socket.
#   hack/pods/down.sh STATE BRIDGE
set -uo pipefail
state=${1:?usage: hack/pods/down.sh STATE BRIDGE}
bridge=${2:?usage: hack/pods/down.sh STATE BRIDGE}
socket=$state/containerd.sock

stop() { # NAME: SIGTERM, up to 10 s, then SIGKILL
  local file=$state/run/$1.pid pid
  [[ -f $file ]] || return 0
  pid=$(<"$file")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$file"
}

stop kubelet
if [[ -S $socket ]]; then
  ctr=(ctr -a "$socket" -n k8s.io)
  for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1; done
  sleep 1
  for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks delete -f "$id" >/dev/null 2>&1; done
  for id in $("${ctr[@]}" containers ls -q 2>/dev/null); do "${ctr[@]}" containers delete "$id" >/dev/null 2>&1; done
fi
stop containerd
# The shims outlive containerd; each names the socket it reports to.
pkill -9 -f -- "-address $socket" 2>/dev/null
sleep 0.5

# Volumes, root filesystems and shm under STATE, deepest first; then the network namespaces that
# containerd made for its sandboxes and nothing holds any more.
findmnt -rn -o TARGET | grep -F "$state/" | sort -r | while read -r target; do umount -l "$target" 2>/dev/null; done
for ns in /run/netns/cni-*; do
  [[ -e $ns ]] || continue
  umount "$ns" 2>/dev/null && rm -f "$ns"
done
# The kubelet's cgroups (cgroupfs driver): kubepods in every hierarchy, deepest first.
for hierarchy in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
  [[ -d $hierarchy/kubepods ]] && find "$hierarchy/kubepods" -depth -type d -exec rmdir {} + 2>/dev/null
done
ip link del "$bridge" 2>/dev/null

# What the kubelet and libcni write outside STATE.
find /var/log/containers -maxdepth 1 -lname "$state/*" -delete 2>/dev/null
rm -f /var/lib/cni/results/breakwater-pods-* /var/lib/kubelet/device-plugins/kubelet.sock 2>/dev/null
rmdir /var/lib/cni/results /var/lib/cni /var/lib/kubelet/device-plugins /var/lib/kubelet /var/log/containers 2>/dev/null
rmdir /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd/fifo /run/containerd/s /run/containerd 2>/dev/null
rm -rf "$state"
exit 0
