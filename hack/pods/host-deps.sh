#!/usr/bin/env bash
# Installs what real pods need on this host from Debian's packages, when missing: containerd and runc
# (the container runtime), the CNI plugins (the pods' bridge network), busybox-static (the test app
# image) and a C compiler (the pause image). Needs root. A no-op when everything is there.
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] || need+=(containernetworking-plugins)
# Static: the app image has no C library for it to load.
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v ip >/dev/null || need+=(iproute2)
# The kubelet keeps its canary chains with it (it adds no rule that routes or rewrites traffic).
command -v iptables >/dev/null || need+=(iptables)
((${#need[@]} == 0)) && exit 0
if ((EUID != 0)); then
  echo "pods: missing ${need[*]}; installing them needs root (apt-get install ${need[*]})" >&2
  exit 1
fi
echo "pods: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
