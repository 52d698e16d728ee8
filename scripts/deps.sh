#!/usr/bin/env bash
# Install (once) Debian packages: those named as arguments, or without arguments the ones the
# demo and the tests need (libvirt for tests/bridge_helper.rs and tests/libvirt_ethernet.rs:
# private session and system libvirtds, never started as a service; qemu-system-common for
# Debian's qemu-bridge-helper; mandoc and groff-base for tests/docs.rs's man-page lint).
set -euo pipefail
if [ $# -gt 0 ]; then
    pkgs=("$@")
else
    pkgs=(qemu-system-x86 qemu-system-common busybox-static linux-image-amd64 iproute2 libcap2-bin
          util-linux strace libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients mandoc
          groff-base)
fi
need=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
