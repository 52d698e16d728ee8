#!/usr/bin/env bash
# qemu-ifup-rs demo: boot a tiny Linux guest under QEMU whose NIC is a tap that our qemu-ifup puts
# on the bridge of the default route, watch the guest ping the host through it, and see our
# qemu-ifdown detach the tap when QEMU exits.
#
# Run as root from anywhere in the repository: `sudo scripts/demo.sh` (Debian 12). Everything
# happens in a throwaway network namespace, deleted on exit: the host's interfaces are not touched.
# Exit status: 0 if the tap reached the bridge, the guest's ping succeeded and the tap was detached.
set -euo pipefail

cd "$(dirname "$0")/.."
NS="qifup-demo-$$"
BRIDGE=br0
TAP=demo-tap0
BRIDGE_MTU=1400 # not the default 1500, to show the tap taking the bridge's MTU
HOST_IP=10.0.2.1
GUEST_IP=10.0.2.15
CLEAN_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin)

if [ -t 1 ]; then BOLD=$'\033[1m' RED=$'\033[1;31m' GREEN=$'\033[1;32m' PLAIN=$'\033[0m'
else BOLD= RED= GREEN= PLAIN=; fi
section() { printf '\n%s=== %s ===%s\n' "$BOLD" "$*" "$PLAIN"; }
fail() { printf '\n%sDEMO FAILED: %s%s\n' "$RED" "$*" "$PLAIN" >&2; exit 1; }
inns() { ip netns exec "$NS" "$@"; }

[ "$(id -u)" = 0 ] || fail "run me as root (I create a network namespace, a bridge and a tap)"
start=$SECONDS

section "1. Packages: qemu-system-x86 busybox-static linux-image-amd64 iproute2"
missing=()
for pkg in qemu-system-x86 busybox-static iproute2; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
compgen -G '/boot/vmlinuz-*' >/dev/null || missing+=(linux-image-amd64)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
    echo "all present"
fi
command -v cargo >/dev/null || fail "cargo not found in PATH (install Rust; with sudo, try \`sudo -E env PATH=\$PATH $0\`)"

section "2. Build: cargo build --release, and the guest image (kernel + initramfs)"
cargo build --release --bins
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
IFUP="$TARGET_DIR/release/qemu-ifup"
IFDOWN="$TARGET_DIR/release/qemu-ifdown"
image=$(cargo run -q -p ifup-testkit --bin make-guest-image -- "$TARGET_DIR/demo-guest")
KERNEL=$(sed -n 's/^kernel=//p' <<<"$image")
INITRD=$(sed -n 's/^initrd=//p' <<<"$image")
ls -l "$IFUP" "$IFDOWN" "$KERNEL" "$INITRD"

WORK=$(mktemp -d /tmp/qemu-ifup-rs-demo.XXXXXX)
QEMU_PID=
cleanup() {
    if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
        kill "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" 2>/dev/null || true
    fi
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

section "3. Network namespace $NS: bridge $BRIDGE ($HOST_IP/24, MTU $BRIDGE_MTU) carrying the default route"
ip netns add "$NS"
ip -n "$NS" link set lo up
# Best practice the helper checks for: a bridge MAC set by the admin (otherwise the bridge takes the
# lowest port MAC and changes as VMs come and go), and bridged frames not sent through iptables.
ip -n "$NS" link add "$BRIDGE" address 02:00:00:00:02:01 type bridge
if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then # br_netfilter is loaded
    inns sysctl -q -w net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0
fi
ip -n "$NS" link set "$BRIDGE" mtu "$BRIDGE_MTU"
ip -n "$NS" addr add "$HOST_IP/24" dev "$BRIDGE"
ip -n "$NS" link set "$BRIDGE" up
ip -n "$NS" route add default dev "$BRIDGE"
# A persistent tap, so that it is still there to look at after QEMU exits.
ip -n "$NS" tuntap add dev "$TAP" mode tap
echo "\$ ip route"; ip -n "$NS" route
echo "\$ ip -br link"; ip -n "$NS" -br link

qemu_env=()
if [ -e /etc/qemu-ifup-rs.conf ]; then
    echo "note: /etc/qemu-ifup-rs.conf exists on this machine; giving QEMU (and so qemu-ifup)"
    echo "      QEMU_IFUP_CONFIG=$WORK/demo.conf with 'bridge $BRIDGE' so that it cannot interfere"
    printf 'bridge %s\n' "$BRIDGE" >"$WORK/demo.conf"
    qemu_env=("QEMU_IFUP_CONFIG=$WORK/demo.conf")
else
    echo "no /etc/qemu-ifup-rs.conf: qemu-ifup will pick the bridge of the default route"
fi

section "4. Start QEMU: -netdev tap,ifname=$TAP,script=qemu-ifup,downscript=qemu-ifdown"
qemu_args=(
    qemu-system-x86_64 -accel tcg -m 256 -nodefaults -no-reboot
    -display none -monitor none -serial stdio
    -kernel "$KERNEL" -initrd "$INITRD"
    -append "console=ttyS0 panic=-1 quiet ifup_rs.ip=$GUEST_IP/24 ifup_rs.ping=$HOST_IP"
    -netdev "tap,id=n0,ifname=$TAP,script=$IFUP,downscript=$IFDOWN"
    -device virtio-net-pci,netdev=n0,romfile=
)
echo "${qemu_args[*]}"
# `ip netns exec` and `env` exec in place, so $! is QEMU's pid.
inns "${CLEAN_ENV[@]}" "${qemu_env[@]}" "${qemu_args[@]}" \
    </dev/null >"$WORK/console.log" 2>"$WORK/qemu.err" &
QEMU_PID=$!

attached=
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ] && kill -0 "$QEMU_PID" 2>/dev/null; do
    if ip -n "$NS" -o link show dev "$TAP" 2>/dev/null | grep -q " master $BRIDGE "; then
        attached=1
        break
    fi
    sleep 0.05
done

section "5. While the VM runs: $TAP (expected: on $BRIDGE, with its MTU $BRIDGE_MTU, up)"
echo "\$ bridge link"; bridge -netns "$NS" link show
echo "\$ ip -d link show $TAP"; ip -n "$NS" -d link show dev "$TAP"
if [ -z "$attached" ]; then
    echo "--- QEMU stderr ---"; cat "$WORK/qemu.err"
    fail "$TAP never reached $BRIDGE"
fi
running=$(ip -n "$NS" -o link show dev "$TAP")
grep -q " mtu $BRIDGE_MTU " <<<"$running" || fail "$TAP did not take $BRIDGE's MTU $BRIDGE_MTU"

section "6. Guest console (the guest pings $HOST_IP, then powers off)"
verdict=
deadline=$((SECONDS + 90))
while [ $SECONDS -lt $deadline ]; do
    verdict=$(grep -oE 'GUEST-PING-(OK|FAIL)' "$WORK/console.log" | head -n 1 || true)
    [ -n "$verdict" ] && break
    kill -0 "$QEMU_PID" 2>/dev/null || break
    sleep 0.2
done
while [ $SECONDS -lt $deadline ] && kill -0 "$QEMU_PID" 2>/dev/null; do sleep 0.1; done
if kill -0 "$QEMU_PID" 2>/dev/null; then
    cat "$WORK/console.log"
    fail "QEMU did not exit in time"
fi
qemu_rc=0
wait "$QEMU_PID" || qemu_rc=$?
QEMU_PID=
cat "$WORK/console.log"
if [ -s "$WORK/qemu.err" ]; then echo "--- QEMU stderr ---"; cat "$WORK/qemu.err"; fi
echo "QEMU exit status: $qemu_rc; guest verdict: ${verdict:-none}"

section "7. After QEMU exited: qemu-ifdown detached $TAP and set it down"
echo "\$ bridge link"; bridge -netns "$NS" link show
echo "\$ ip -d link show $TAP"; ip -n "$NS" -d link show dev "$TAP"
after=$(ip -n "$NS" -o link show dev "$TAP")
detached=1
grep -q " master " <<<"$after" && detached=
grep -qE '<([^>]*,)?UP[,>]' <<<"$after" && detached=

section "Result ($((SECONDS - start)) s)"
[ "$verdict" = GUEST-PING-OK ] || fail "the guest's ping of $HOST_IP failed (${verdict:-no verdict})"
[ "$qemu_rc" = 0 ] || fail "QEMU exited with status $qemu_rc"
[ -n "$detached" ] || fail "$TAP is still attached or up after QEMU exited"
printf '%sOK%s: %s joined %s (MTU %s), the guest pinged %s through it, and it was detached at exit\n' \
    "$GREEN" "$PLAIN" "$TAP" "$BRIDGE" "$BRIDGE_MTU" "$HOST_IP"
