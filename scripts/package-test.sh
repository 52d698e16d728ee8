#!/usr/bin/env bash
# The installed-package test, as root on Debian (CI runs it). Every package format is built with
# the README's own commands (read from its "Packages" section and run as written), installed,
# and checked:
# - .deb: built, lintian-clean, installed with apt; files, modes, file capabilities, conffile,
#   man pages; the real-QEMU end-to-end tests against the INSTALLED /usr/libexec/qemu-ifup-rs;
#   QEMU run by an unprivileged user in the package's default privilege mode, with the helpers as
#   script=/downscript= and with the installed helper as its bridge helper (-netdev bridge,
#   helper=); the modes of qemu-ifup-rs-privilege (the bridge helper again in setuid mode);
#   qemu-ifup-rs-divert for QEMU's scripts and for its bridge helper (QEMU's default helper then
#   runs ours); the route protocol name (`proto qemu-ifup-rs` in `ip route`); `dpkg -r` leaves
#   only the conffiles and undoes the diversions, `dpkg -P` leaves nothing.
# - RPM (rpmbuild from Debian's rpm package): installed into a scratch root with rpm; files,
#   modes, file capabilities (rpm -V), %config(noreplace); the --with setuid build gives 4750
#   root:kvm.
# - Arch (makepkg from Debian's makepkg package): built by a normal user in a git checkout of its
#   own; files, modes, backup=, the install script in both privilege modes, installed into a
#   scratch root with Debian's pacman.
# - One binary: the helpers of all three formats are the same size within 4 KiB and load only
#   libc (the static unwinder of build.rs).
#
# Everything that touches the network happens in throwaway network namespaces; the files the
# unprivileged run needs in /etc (the ACL) live in an overlay seen only by that run.
# The package is purged on exit, also on failure. Refuses to run if qemu-ifup-rs is already
# installed or /etc/qemu-ifup-rs.conf exists: it would not be ours to remove.
#
# Environment: PACKAGE_TEST_RPM=0 skips the RPM, PACKAGE_TEST_ARCH=0 the Arch package,
# PACKAGE_TEST_LINTIAN=0 lintian (each says so when skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PKG=qemu-ifup-rs
UP=/usr/libexec/qemu-ifup-rs
DOWN=/usr/libexec/qemu-ifdown-rs
CONF=/etc/qemu-ifup-rs.conf
RT_PROTOS=/etc/iproute2/rt_protos.d/qemu-ifup-rs.conf # names route protocol 112 for `ip route`
TEST_UID=4242  # the unprivileged user: no account needed
BUILD_UID=4243 # the normal user who runs makepkg (which refuses root): no account needed
HELPER=/usr/lib/qemu/qemu-bridge-helper # QEMU's default bridge helper on Debian
TAP=pkgtap0
CLEAN_PATH=/usr/sbin:/usr/bin:/sbin:/bin

start=$SECONDS
step_start=$SECONDS
passed=0
step() {
    printf '\n=== %s  [%d s]\n' "$*" "$((SECONDS - start))"
    step_start=$SECONDS
}
ok() {
    passed=$((passed + 1))
    printf 'ok: %s\n' "$*"
}
# `grep -q` on a pipe can exit before the writer is done, which pipefail reports as a failure.
has() { grep "$@" >/dev/null; }
fail() {
    printf '\nPACKAGE TEST FAILED: %s\n' "$*" >&2
    exit 1
}
. packaging/common.sh
VERSION=$(workspace_version "$ROOT")
ARCH_DEB=$(dpkg --print-architecture)
ARCH_UNAME=$(uname -m)

# readme_cmd PREFIX: the command of README.md's "Packages" code block that starts with PREFIX,
# without its trailing comment. The test runs the README's commands, not copies of them.
readme_cmd() {
    local line
    line=$(awk -v prefix="$1" '/^## Packages/ {p = 1; next} p && /^## / {exit}
        p && /^```/ {b = !b; next} p && b && index($0, prefix) == 1 {print; exit}' README.md)
    [ -n "$line" ] || fail "README.md's Packages section has no command starting with '$1'"
    sed 's/[[:space:]]\{2,\}#.*$//' <<<"$line"
}
# run_readme PREFIX: print and run that command from the top of the checkout, as root (a
# leading `sudo ` is dropped: CI machines have no sudo, and we are root already).
run_readme() {
    local cmd
    cmd=$(readme_cmd "$1") || exit 1 # also where `set -e` is off (run_readme ... || ...)
    cmd=${cmd#sudo }
    printf '+ %s\n' "$cmd"
    bash -c "$cmd"
}

[ "$(id -u)" = 0 ] || fail "run as root: it installs a package and creates namespaces, bridges and taps"
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | has -v 'not-installed'; then
    fail "$PKG is already installed (or its conffile is left): purge it first (dpkg -P $PKG)"
fi
[ ! -e "$CONF" ] || fail "$CONF exists but $PKG is not installed: move it away first"
[ ! -e "$RT_PROTOS" ] || fail "$RT_PROTOS exists but $PKG is not installed: move it away first"

WORK=$(mktemp -d /tmp/qemu-ifup-rs-pkgtest.XXXXXX)
chmod 0755 "$WORK" # the unprivileged QEMU reads the guest image below it
installed=
conf_moved=
cleanup() {
    local rc=$?
    set +e
    if [ -n "$conf_moved" ] && [ -e "$WORK/conffile" ]; then
        mv "$WORK/conffile" "$CONF"
    fi
    if [ -n "$installed" ]; then
        echo "cleanup: purging $PKG"
        dpkg -P "$PKG" >/dev/null
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------------------------------------
step "1. Packages needed: QEMU & co (scripts/deps.sh), debhelper, man-db, mandoc, rpm, makepkg"
bash scripts/deps.sh
need=(debhelper man-db mandoc binutils)
if [ "${PACKAGE_TEST_RPM:-1}" = 1 ]; then need+=(rpm); fi
if [ "${PACKAGE_TEST_LINTIAN:-1}" = 1 ]; then need+=(lintian); fi
# makepkg needs a pacman binary even with --nodeps; Debian's pacman also installs the package
# into a scratch root below. bsdtar unpacks the sources and packs the package.
if [ "${PACKAGE_TEST_ARCH:-1}" = 1 ]; then need+=(makepkg pacman-package-manager libarchive-tools fakeroot git); fi
bash scripts/deps.sh "${need[@]}"

# ---------------------------------------------------------------------------------------------
step "2. Build the .deb with the README's command"
deb=target/packages/qemu-ifup-rs_${VERSION}_${ARCH_DEB}.deb
rm -f "$deb"
run_readme 'packaging/build-deb.sh'
[ -f "$deb" ] || fail "the README's build-deb.sh command made no $deb"
cp "$deb" "$WORK/"
deb=$WORK/$(basename "$deb")
echo "built $deb in $((SECONDS - step_start)) s"
if [ "${PACKAGE_TEST_LINTIAN:-1}" = 1 ]; then
    lintian --fail-on error,warning "$deb" || fail "lintian found problems in $deb"
    ok "lintian: no errors or warnings"
else
    echo "SKIPPED: lintian (PACKAGE_TEST_LINTIAN=0)"
fi
depends=$(dpkg-deb -f "$deb" Depends)
! has 'libgcc' <<<"$depends" || fail "the .deb depends on libgcc ($depends): is build.rs's static unwinder gone?"
ok "Depends: $depends (no libgcc-s1: the unwinder is linked statically)"

# ---------------------------------------------------------------------------------------------
step "3. Install it with the README's command"
# The README's `apt install` asks before installing missing dependencies; answer yes the way
# its user would, without changing the command.
printf 'APT::Get::Assume-Yes "true";\n' >"$WORK/apt.conf"
installed=1
APT_CONFIG=$WORK/apt.conf DEBIAN_FRONTEND=noninteractive run_readme 'sudo apt install ./target/packages/'
dpkg-query -W -f='${Status}\n' "$PKG" | has 'install ok installed' || fail "$PKG is not installed"
ok "installed"

# ---------------------------------------------------------------------------------------------
step "4. What the package installed"
dpkg -L "$PKG" | sort >"$WORK/files"
expect_files=(
    "$UP" "$DOWN" "$CONF" "$RT_PROTOS"
    /usr/sbin/qemu-ifup-rs-privilege /usr/sbin/qemu-ifup-rs-divert
    /usr/share/man/man8/qemu-ifup-rs.8.gz /usr/share/man/man8/qemu-ifdown-rs.8.gz
    /usr/share/man/man5/qemu-ifup-rs.conf.5.gz
    /usr/share/man/man8/qemu-ifup-rs-privilege.8.gz /usr/share/man/man8/qemu-ifup-rs-divert.8.gz
    /usr/share/doc/qemu-ifup-rs/copyright /usr/share/doc/qemu-ifup-rs/GUIDE.md
    /usr/share/doc/qemu-ifup-rs/examples/bridge.conf.example
)
for f in "${expect_files[@]}"; do
    grep -qxF "$f" "$WORK/files" || fail "dpkg -L $PKG does not list $f"
    [ -e "$f" ] || fail "$f is listed but missing (a dpkg path-exclude in /etc/dpkg/dpkg.cfg.d?)"
done
ok "all ${#expect_files[@]} expected files installed"

dpkg-query -W -f='${Conffiles}\n' "$PKG" | has "^ $CONF " || fail "$CONF is not a conffile"
[ "$(stat -c '%a %U:%G' "$CONF")" = "644 root:root" ] || fail "$CONF: $(stat -c '%a %U:%G' "$CONF")"
if grep -qvE '^[[:space:]]*(#|$)' "$CONF"; then
    fail "$CONF as shipped should be all comments: $(grep -vE '^[[:space:]]*(#|$)' "$CONF")"
fi
ok "$CONF: a conffile, root:root 0644, every line a comment"
dpkg-query -W -f='${Conffiles}\n' "$PKG" | has "^ $RT_PROTOS " || fail "$RT_PROTOS is not a conffile"
[ "$(stat -c '%a %U:%G' "$RT_PROTOS")" = "644 root:root" ] || fail "$RT_PROTOS: $(stat -c '%a %U:%G' "$RT_PROTOS")"
[ "$(grep -vE '^[[:space:]]*(#|$)' "$RT_PROTOS" | tr -s ' \t' ' ')" = "112 qemu-ifup-rs" ] ||
    fail "$RT_PROTOS should name protocol 112 and nothing else: $(cat "$RT_PROTOS")"
ok "$RT_PROTOS: a conffile, root:root 0644, '112 qemu-ifup-rs'"

# The default privilege: the file capability if this filesystem takes one, else setuid root for
# group kvm, else none. Probe the filesystem with a scratch file next to the helpers.
probe=$(mktemp /usr/libexec/.qemu-ifup-rs-probe.XXXXXX)
if setcap cap_net_admin+ep "$probe" 2>/dev/null; then mode=caps
elif getent group kvm >/dev/null; then mode=setuid
else mode=none; fi
rm -f "$probe"
for f in "$UP" "$DOWN"; do
    perms=$(stat -c '%a %U:%G' "$f")
    caps=$(getcap "$f" | sed 's/^[^ ]* //')
    case $mode in
        caps) [ "$perms" = "755 root:root" ] && [ "$caps" = "cap_net_admin=ep" ] ;;
        setuid) [ "$perms" = "4750 root:kvm" ] && [ -z "$caps" ] ;;
        none) [ "$perms" = "755 root:root" ] && [ -z "$caps" ] ;;
    esac || fail "$f: expected the default mode '$mode', found $perms caps '${caps:-none}'"
    ! dpkg-statoverride --list "$f" >/dev/null || fail "$f has a statoverride after a fresh install"
done
qemu-ifup-rs-privilege status
ok "default privilege mode on this filesystem: $mode, no statoverride"

"$UP" --version | has -x "qemu-ifup (qemu-ifup-rs) $(dpkg-query -W -f='${Version}' "$PKG" | sed 's/-.*//')" ||
    fail "$UP --version: $("$UP" --version)"
"$DOWN" --help | has '^Usage: qemu-ifdown' || fail "$DOWN --help"
ok "--version and --help of the installed helpers"

# ---------------------------------------------------------------------------------------------
step "5. Man pages: man -w finds them, and they render without warnings"
for page in qemu-ifup-rs qemu-ifdown-rs qemu-ifup-rs.conf qemu-ifup-rs-privilege qemu-ifup-rs-divert; do
    path=$(man -w "$page") || fail "man -w $page found nothing"
    warnings=$(MANWIDTH=80 man --warnings=w -E UTF-8 "$page" 2>&1 >/dev/null || true)
    [ -z "$warnings" ] || fail "man $page renders with warnings: $warnings"
    if ! lint=$(mandoc -T lint -W warning "$path" 2>&1); then fail "mandoc -T lint $path: $lint"; fi
    [ -z "$lint" ] || fail "mandoc -T lint $path: $lint"
    echo "  man $page -> $path"
done
man -w qemu-ifup-rs.conf | has 'man5/qemu-ifup-rs.conf.5' || fail "man qemu-ifup-rs.conf is not section 5"
MANWIDTH=80 man qemu-ifdown-rs 2>/dev/null | has 'qemu-ifdown-rs - attach' || fail "man qemu-ifdown-rs"
ok "5 man pages found and clean"

# ---------------------------------------------------------------------------------------------
step "6. The shipped $CONF behaves like no config: the bridge of the default route; routes are proto qemu-ifup-rs"
# In a fresh network namespace: bridge br0 with the default route, and a tap.
cat >"$WORK/ns-root.sh" <<'EOF'
set -euo pipefail
has() { grep "$@" >/dev/null; }
ip link set lo up
ip link add br0 type bridge
ip link set br0 up
ip addr add 10.0.2.1/24 dev br0
ip route add default dev br0
ip tuntap add dev "$TAP" mode tap
plan=$("$UP" --dry-run "$TAP")
echo "$plan"
grep -q 'bridge br0 .*the bridge of the default route' <<<"$plan"
"$UP" "$TAP"
ip -j link show dev "$TAP" | has '"master":"br0"'
"$DOWN" "$TAP"
if ip -j link show dev "$TAP" | has '"master"'; then exit 1; fi
EOF
TAP=$TAP UP=$UP DOWN=$DOWN unshare --net bash "$WORK/ns-root.sh" || fail "the shipped config did not pick br0"
ok "with the shipped config, root's qemu-ifup-rs attached the tap to the default-route bridge"
# A routed tap (root may name a config): its routes carry protocol 112, which `ip route` names
# thanks to $RT_PROTOS; qemu-ifdown-rs removes them.
printf 'tap %s route 198.51.100.10,2001:db8::10\n' "$TAP" >"$WORK/routed.conf"
cat >"$WORK/ns-routed.sh" <<'EOF'
set -euo pipefail
has() { grep "$@" >/dev/null; }
ip link set lo up
ip tuntap add dev "$TAP" mode tap
"$UP" --config "$WORK/routed.conf" "$TAP"
ip route show dev "$TAP"
ip -6 route show dev "$TAP"
ip route show dev "$TAP" | has '^198\.51\.100\.10 proto qemu-ifup-rs scope link'
ip -6 route show dev "$TAP" | has '^2001:db8::10 proto qemu-ifup-rs '
ip route show proto qemu-ifup-rs | has '^198\.51\.100\.10 '
"$DOWN" "$TAP"
[ -z "$(ip route show dev "$TAP"; ip -6 route show dev "$TAP" proto qemu-ifup-rs)" ]
EOF
TAP=$TAP UP=$UP DOWN=$DOWN WORK=$WORK unshare --net bash "$WORK/ns-routed.sh" ||
    fail "a routed tap's routes are not shown as proto qemu-ifup-rs, or not removed"
ok "a routed tap's IPv4 and IPv6 routes show as 'proto qemu-ifup-rs' in ip route; qemu-ifdown-rs removed them"

# ---------------------------------------------------------------------------------------------
step "7. The real-QEMU end-to-end tests against the installed helpers (QEMU_IFUP_RS_INSTALLED=1)"
grep -q 'helper_bins' tests/e2e_qemu.rs ||
    fail "tests/e2e_qemu.rs does not use ifup_testkit::bins::helper_bins: it would test the build tree, not the package"
# Those tests check the no-config behaviour and want no system config file; the shipped one is
# all comments (checked above), so it is moved aside while they run.
mv "$CONF" "$WORK/conffile"
conf_moved=1
QEMU_IFUP_RS_INSTALLED=1 cargo test --locked --test e2e_qemu
mv "$WORK/conffile" "$CONF"
conf_moved=
ok "cargo test --test e2e_qemu passed against $UP"

# ---------------------------------------------------------------------------------------------
# A QEMU run by uid $TEST_UID, in fresh network and mount namespaces: bridge br0 (10.0.2.1/24,
# default route, so the shipped config picks it), a persistent tap owned by the user, and
# `allow br0` in an /etc/qemu/bridge.conf that exists only in an overlay over /etc.
guest=$(cargo run -q --locked -p ifup-testkit --bin make-guest-image -- "$ROOT/target/demo-guest")
mkdir -p "$WORK/guest"
install -m 0644 "$(sed -n 's/^kernel=//p' <<<"$guest")" "$WORK/guest/kernel"
install -m 0644 "$(sed -n 's/^initrd=//p' <<<"$guest")" "$WORK/guest/initrd"
chmod 0755 "$WORK/guest"

cat >"$WORK/ns-user.sh" <<'EOF'
# ns-user.sh CHECK: run in new network and mount namespaces (unshare -n -m).
set -euo pipefail
has() { grep "$@" >/dev/null; }
check=$1
mkdir -p "$WORK/etc-upper-$check" "$WORK/etc-work-$check"
mount -t overlay overlay \
    -o "lowerdir=/etc,upperdir=$WORK/etc-upper-$check,workdir=$WORK/etc-work-$check" /etc
mkdir -p /etc/qemu
chmod 0755 /etc/qemu
printf 'allow br0\n' >/etc/qemu/bridge.conf
chmod 0644 /etc/qemu/bridge.conf
ip link set lo up
ip link add br0 type bridge
ip link set br0 mtu 1400
ip link set br0 up
ip addr add 10.0.2.1/24 dev br0
ip route add default dev br0
ip link add br-other type bridge
ip link set br-other up
ip tuntap add dev "$TAP" mode tap user "$TEST_UID"
ip tuntap add dev roottap0 mode tap
as_user=(setpriv --reuid="$TEST_UID" --regid="$TEST_UID" --clear-groups)
kvm=$(getent group kvm | cut -d: -f3) || kvm= # step 9 fails without a group kvm
as_kvm_member=("${as_user[@]/--clear-groups/--groups=$kvm}")
master() { ip -j link show dev "$1" | sed -n 's/.*"master":"\([^"]*\)".*/\1/p'; }
is_up() { ip -j link show dev "$1" | has '"flags":\[[^]]*"UP"'; }
expect_exit() { # expect_exit CODE PATTERN CMD...: run CMD, check its exit status and stderr
    local want=$1 pattern=$2 rc=0
    shift 2
    "$@" 2>"$WORK/err" || rc=$?
    cat "$WORK/err"
    [ "$rc" = "$want" ] || { echo "expected exit $want, got $rc: $*"; return 1; }
    grep -q -- "$pattern" "$WORK/err" || { echo "stderr lacks '$pattern': $*"; return 1; }
}
qemu_on() { # qemu_on NETDEV [CMD...]: exec QEMU (through CMD, e.g. setpriv) with its NIC on
    # -netdev NETDEV, booting the test guest, which pings 10.0.2.1; the console goes to
    # $WORK/console, QEMU's stderr to $WORK/qemu.err. Run it in a subshell (`&` or `( )`).
    local netdev=$1
    shift
    exec "$@" env -i PATH="$CLEAN_PATH" qemu-system-x86_64 \
        -accel tcg -m 256 -nodefaults -no-reboot -display none -monitor none -serial stdio \
        -kernel "$WORK/guest/kernel" -initrd "$WORK/guest/initrd" \
        -append "console=ttyS0 panic=-1 quiet ifup_rs.ip=10.0.2.15/24 ifup_rs.ping=10.0.2.1" \
        -netdev "$netdev" -device virtio-net-pci,netdev=n0,romfile= \
        </dev/null >"$WORK/console" 2>"$WORK/qemu.err"
}
ports() { ip -o link show master br0 | awk -F': ' '{print $2}'; }
watch_qemu() { # watch_qemu PID: while QEMU (PID) runs, wait up to 60 s for a port on br0; then
    # wait up to 120 s for QEMU to exit and show its console and stderr. Sets tap (the port),
    # uid (QEMU's, or gone), mtu (the port's) and rc (QEMU's exit status).
    local qemu=$1
    tap=
    for _ in $(seq 600); do
        tap=$(ports | head -n 1)
        if [ -n "$tap" ]; then break; fi
        kill -0 "$qemu" 2>/dev/null || break
        sleep 0.1
    done
    uid=$(awk '/^Uid:/ {print $2}' "/proc/$qemu/status" 2>/dev/null || echo gone)
    if [ -n "$tap" ]; then ip -d link show dev "$tap"; fi
    mtu=$(ip -j link show dev "$tap" 2>/dev/null | sed -n 's/.*"mtu":\([0-9]*\).*/\1/p')
    rc=0
    timeout 120 tail --pid="$qemu" -f /dev/null || true
    wait "$qemu" || rc=$?
    cat "$WORK/console" "$WORK/qemu.err"
}
check_qemu() { # check_qemu MTU WHY: after watch_qemu: a tap reached br0 with MTU (WHY says
    # whose MTU that is), QEMU ran as $TEST_UID, the guest pinged 10.0.2.1, QEMU exited with 0.
    [ -n "$tap" ] || { echo "no tap ever reached br0"; exit 1; }
    [ "$uid" = "$TEST_UID" ] || [ "$uid" = gone ] || { echo "QEMU ran as uid $uid"; exit 1; }
    [ "$mtu" = "$1" ] || { echo "the tap has MTU $mtu, not $1 ($2)"; exit 1; }
    grep -q GUEST-PING-OK "$WORK/console" || { echo "the guest could not ping 10.0.2.1"; exit 1; }
    [ "$rc" = 0 ] || { echo "QEMU exited with status $rc"; exit 1; }
}
case $check in
qemu)
    # QEMU itself runs as the user, with the installed helpers as script= and downscript=.
    qemu_on "tap,id=n0,ifname=$TAP,script=$UP,downscript=$DOWN" "${as_user[@]}" &
    watch_qemu $!
    [ "$tap" = "$TAP" ] || { echo "br0's port is '$tap', not $TAP"; exit 1; }
    check_qemu 1400 "br0's"
    [ -z "$(master "$TAP")" ] || { echo "qemu-ifdown-rs left the tap on $(master "$TAP")"; exit 1; }
    ! is_up "$TAP" || { echo "qemu-ifdown-rs left the tap up"; exit 1; }
    ;;
denials)
    # The ACL and the tap's owner are what stand between the user and the bridges.
    expect_exit 1 "not the caller's" "${as_user[@]}" "$UP" roottap0
    [ -z "$(master roottap0)" ] || exit 1
    printf 'allow br0\ndeny br0\n' >/etc/qemu/bridge.conf
    expect_exit 1 'denied' "${as_user[@]}" "$UP" "$TAP"
    printf 'allow br-other\n' >/etc/qemu/bridge.conf
    expect_exit 1 'does not allow bridge br0' "${as_user[@]}" "$UP" "$TAP"
    [ -z "$(master "$TAP")" ] || exit 1
    expect_exit 2 'QEMU_IFUP_CONFIG' "${as_user[@]}" env QEMU_IFUP_CONFIG=/tmp/x.conf "$UP" "$TAP"
    expect_exit 2 '--config' "${as_user[@]}" "$UP" --config /tmp/x.conf "$TAP"
    ;;
setuid)
    # Mode 4750 root:kvm: the user outside group kvm cannot even run it; inside, it works.
    if "${as_user[@]}" "$WORK/exec-probe" 2>/dev/null; then
        # Seen on some sandboxed kernels: a file with any x bit runs for everyone.
        echo "NOTE: uid $TEST_UID can execute a root-only (0700) file on this machine: the kernel"
        echo "      does not enforce exec permission bits, so 'mode 4750 keeps users outside"
        echo "      group kvm out' cannot be checked here"
    else
        expect_exit 126 'Permission denied' "${as_user[@]}" "$UP" "$TAP"
    fi
    "${as_kvm_member[@]}" "$UP" "$TAP"
    [ "$(master "$TAP")" = br0 ] || { echo "not attached by the kvm member"; exit 1; }
    is_up "$TAP" || { echo "not up"; exit 1; }
    "${as_kvm_member[@]}" "$DOWN" "$TAP"
    [ -z "$(master "$TAP")" ] || { echo "not detached"; exit 1; }
    ! is_up "$TAP" || { echo "still up"; exit 1; }
    ;;
none)
    expect_exit 1 'CAP_NET_ADMIN' "${as_user[@]}" "$UP" "$TAP"
    [ -z "$(master "$TAP")" ] || exit 1
    ;;
bridge-helper | bridge-helper-setuid | default-helper)
    # QEMU as the user with -netdev bridge: QEMU runs the bridge helper (helper=$UP, or with
    # default-helper its default $HELPER, diverted to ours), which makes a tap, puts it on br0
    # and passes it to QEMU. What proves the helper is ours: it applies the config's `bridge br0
    # mtu 1300` line to the tap (Debian's helper gives a tap br0's MTU, 1400), and its refusal
    # of a bridge the ACL does not allow is our one-line error on QEMU's stderr.
    printf 'bridge br0 mtu 1300\n' >/etc/qemu-ifup-rs.conf
    chmod 0644 /etc/qemu-ifup-rs.conf
    user=("${as_user[@]}")
    if [ "$check" = bridge-helper-setuid ]; then user=("${as_kvm_member[@]}"); fi # mode 4750 root:kvm
    helper_opt=",helper=$UP"
    if [ "$check" = default-helper ]; then helper_opt=; fi
    taps() { ip -o link show type tun | awk -F': ' '{print $2}' | sort | tr '\n' ' '; }
    taps_before=$(taps)
    qemu_on "bridge,id=n0,br=br0$helper_opt" "${user[@]}" & # a subshell that becomes QEMU
    watch_qemu $!
    check_qemu 1300 "the config's: not our helper?"
    for _ in $(seq 20); do ip link show dev "$tap" >/dev/null 2>&1 || break; sleep 0.1; done
    ! ip link show dev "$tap" >/dev/null 2>&1 || { echo "$tap outlived QEMU"; exit 1; }
    [ -z "$(ports)" ] || { echo "br0 still has ports: $(ports)"; exit 1; }
    echo "QEMU (uid $TEST_UID) got $tap on br0 (MTU $mtu) from the helper; gone after QEMU"
    # A bridge the ACL does not allow: QEMU fails with our helper's message, and no tap is left.
    rc=0
    (qemu_on "bridge,id=n0,br=br-other$helper_opt" "${user[@]}") || rc=$?
    cat "$WORK/qemu.err"
    [ "$rc" != 0 ] || { echo "QEMU started on br-other"; exit 1; }
    grep -q '^qemu-ifup: error: bridge br-other: ' "$WORK/qemu.err" ||
        { echo "QEMU's stderr lacks our helper's refusal"; exit 1; }
    [ "$(taps)" = "$taps_before" ] || { echo "taps before: $taps_before; after: $(taps)"; exit 1; }
    ;;
default-script)
    # qemu-ifup-rs-divert enable: QEMU's default /etc/qemu-ifup (no script= given) is ours.
    (qemu_on "tap,id=n0,ifname=roottap0") || { cat "$WORK/qemu.err"; exit 1; }
    grep -q GUEST-PING-OK "$WORK/console" || { cat "$WORK/console" "$WORK/qemu.err"; exit 1; }
    [ -z "$(master roottap0)" ] || { echo "/etc/qemu-ifdown did not detach roottap0"; exit 1; }
    ;;
esac
echo "ns-user.sh $check: ok"
EOF
# A root-only executable, to see whether this kernel enforces exec permission bits.
install -m 0700 /bin/true "$WORK/exec-probe"
ns_user() {
    env WORK="$WORK" TAP="$TAP" UP="$UP" DOWN="$DOWN" TEST_UID="$TEST_UID" CLEAN_PATH="$CLEAN_PATH" \
        unshare --net --mount --propagation private bash "$WORK/ns-user.sh" "$1"
}

step "8. QEMU as uid $TEST_UID with the installed helpers, default privilege mode ($mode)"
if [ "$mode" = none ]; then
    echo "skipped: this machine gives the helpers no privilege by default"
else
    ns_user qemu || fail "the unprivileged QEMU run failed"
    ok "QEMU as uid $TEST_UID: its tap joined br0 with br0's MTU, the guest pinged the host, the tap was detached"
    ns_user denials || fail "an unprivileged request that should be refused was not"
    ok "another user's tap, a denied bridge, an unlisted bridge, QEMU_IFUP_CONFIG and --config are refused"
    t=$SECONDS
    ns_user bridge-helper || fail "QEMU as uid $TEST_UID with -netdev bridge,helper=$UP failed"
    ok "QEMU as uid $TEST_UID with -netdev bridge,helper=$UP ($mode): the tap it made was on br0 with the config's MTU, the guest pinged the host, no tap after; br-other refused with our message ($((SECONDS - t)) s)"
fi

# ---------------------------------------------------------------------------------------------
step "9. qemu-ifup-rs-privilege: setuid for group kvm, kept across an upgrade; none; auto"
getent group kvm >/dev/null || fail "no group kvm on this machine (scripts/deps.sh installs QEMU, which brings it)"
qemu-ifup-rs-privilege setuid
for f in "$UP" "$DOWN"; do
    [ "$(stat -c '%a %U:%G' "$f")" = "4750 root:kvm" ] || fail "$f: $(stat -c '%a %U:%G' "$f") after setuid"
    [ -z "$(getcap "$f")" ] || fail "$f still has file capabilities after setuid"
    dpkg-statoverride --list "$f" | has -x "root kvm 4750 $f" || fail "no statoverride for $f"
done
ns_user setuid || fail "setuid mode: the kvm/non-kvm user check failed"
ok "setuid: 4750 root:kvm via dpkg-statoverride; a member of kvm attaches its tap"
t=$SECONDS
ns_user bridge-helper-setuid || fail "setuid mode: QEMU with -netdev bridge,helper=$UP failed"
ok "setuid: QEMU run by a member of kvm with -netdev bridge,helper=$UP: tap on br0 with the config's MTU, the guest pinged, no tap after ($((SECONDS - t)) s)"
dpkg -i "$deb" >/dev/null # an upgrade, as far as dpkg is concerned
for f in "$UP" "$DOWN"; do
    [ "$(stat -c '%a %U:%G' "$f")" = "4750 root:kvm" ] || fail "$f: $(stat -c '%a %U:%G' "$f") after reinstall"
    [ -z "$(getcap "$f")" ] || fail "$f got file capabilities back on reinstall"
done
ok "reinstalling the package kept the admin's choice (dpkg-statoverride)"
qemu-ifup-rs-privilege none
for f in "$UP" "$DOWN"; do
    [ "$(stat -c '%a %U:%G' "$f")" = "755 root:root" ] && [ -z "$(getcap "$f")" ] || fail "$f after none"
done
ns_user none || fail "none: the user could attach without privilege?"
ok "none: 0755 root:root, no capability; the user gets the CAP_NET_ADMIN hint"
qemu-ifup-rs-privilege auto
for f in "$UP" "$DOWN"; do
    ! dpkg-statoverride --list "$f" >/dev/null || fail "auto left a statoverride on $f"
done
[ "$(qemu-ifup-rs-privilege status | grep -c "$mode (")" = 2 ] || fail "auto did not restore $mode"
ok "auto: back to $mode, no statoverride"

# ---------------------------------------------------------------------------------------------
step "10. qemu-ifup-rs-divert: QEMU's /etc/qemu-ifup becomes ours, and back"
qemu_sum=
if dpkg-query -W -f='${Conffiles}' qemu-system-common 2>/dev/null | has ' /etc/qemu-ifup '; then
    qemu_sum=$(dpkg-query -W -f='${Conffiles}' qemu-system-common | awk '$1 == "/etc/qemu-ifup" {print $2}')
fi
run_readme 'sudo qemu-ifup-rs-divert enable'
qemu-ifup-rs-divert enable >/dev/null # twice is fine
[ "$(readlink /etc/qemu-ifup)" = "$UP" ] && [ "$(readlink /etc/qemu-ifdown)" = "$DOWN" ] ||
    fail "/etc/qemu-ifup is not our symlink"
[ "$(dpkg-divert --listpackage /etc/qemu-ifup)" = "$PKG" ] || fail "/etc/qemu-ifup is not diverted by $PKG"
if [ -n "$qemu_sum" ]; then
    [ "$(md5sum </etc/qemu-ifup.distrib | cut -d' ' -f1)" = "$qemu_sum" ] || fail "/etc/qemu-ifup.distrib is not QEMU's script"
fi
[ ! -L "$HELPER" ] || fail "enabling the scripts also touched $HELPER"
qemu-ifup-rs-divert status
ns_user default-script || fail "QEMU's default script did not run qemu-ifup-rs"
ok "enable: QEMU with no script= ran qemu-ifup-rs through /etc/qemu-ifup; the guest pinged"
qemu-ifup-rs-divert disable
[ -z "$(dpkg-divert --listpackage /etc/qemu-ifup)" ] || fail "disable left the diversion"
[ ! -e /etc/qemu-ifup.distrib ] || fail "disable left /etc/qemu-ifup.distrib"
if [ -n "$qemu_sum" ]; then
    [ "$(md5sum </etc/qemu-ifup | cut -d' ' -f1)" = "$qemu_sum" ] || fail "/etc/qemu-ifup is not QEMU's again"
fi
ok "disable: QEMU's scripts are back"

# ---------------------------------------------------------------------------------------------
step "11. qemu-ifup-rs-divert bridge-helper: QEMU's $HELPER becomes ours, and back"
# The path QEMU runs for -netdev bridge without helper=, as QEMU itself reports it.
qemu-system-x86_64 -help | has -F "default=$HELPER" || fail "QEMU's default bridge helper is not $HELPER"
md5s=$(dpkg-query --control-path qemu-system-common md5sums)
helper_sum=$(awk -v f="${HELPER#/}" '$2 == f {print $1}' "$md5s")
[ -n "$helper_sum" ] || fail "$md5s does not list $HELPER"
[ "$(md5sum <"$HELPER" | cut -d' ' -f1)" = "$helper_sum" ] || fail "$HELPER is not qemu-system-common's before the test"
helper_stat=$(stat -c '%a %U:%G' "$HELPER")
qemu-ifup-rs-divert bridge-helper status | has -x "$HELPER: disabled (not diverted)" || fail "status before enable"
run_readme 'sudo qemu-ifup-rs-divert bridge-helper enable'
qemu-ifup-rs-divert bridge-helper enable >/dev/null # twice is fine
check_helper_enabled() { # check_helper_enabled WHEN
    [ "$(readlink "$HELPER")" = "$UP" ] || fail "$1: $HELPER is not a symlink to $UP"
    [ "$(dpkg-divert --listpackage "$HELPER")" = "$PKG" ] || fail "$1: $HELPER is not diverted by $PKG"
    [ "$(dpkg-divert --truename "$HELPER")" = "$HELPER.distrib" ] || fail "$1: dpkg does not send $HELPER to .distrib"
    [ "$(md5sum <"$HELPER.distrib" | cut -d' ' -f1)" = "$helper_sum" ] || fail "$1: $HELPER.distrib is not QEMU's helper"
    [ "$(stat -c '%a %U:%G' "$HELPER.distrib")" = "$helper_stat" ] || fail "$1: $HELPER.distrib lost its mode"
}
check_helper_enabled "enable"
[ ! -L /etc/qemu-ifup ] || fail "enabling the bridge helper also touched /etc/qemu-ifup"
run_readme 'sudo qemu-ifup-rs-divert status' | tee "$WORK/divert-status"
has -xF "$HELPER: enabled (-> $UP; QEMU's is $HELPER.distrib)" "$WORK/divert-status" || fail "status does not say the helper is enabled"
has -xF "/etc/qemu-ifup: disabled (not diverted)" "$WORK/divert-status" || fail "status does not say the scripts are disabled"
ok "bridge-helper enable: $HELPER (QEMU's default) -> $UP, diverted by $PKG; QEMU's helper kept as .distrib"
if [ "$mode" = none ]; then
    echo "skipped: QEMU's default helper as uid $TEST_UID (this machine gives the helpers no privilege by default)"
else
    t=$SECONDS
    ns_user default-helper || fail "QEMU as uid $TEST_UID with -netdev bridge (no helper=) did not run ours"
    ok "QEMU as uid $TEST_UID with -netdev bridge and no helper=: $HELPER ran ours (the config's MTU, our refusal message); the guest pinged, no tap after ($((SECONDS - t)) s)"
fi
dpkg -i "$deb" >/dev/null
check_helper_enabled "after reinstalling $PKG"
ok "an upgrade of $PKG keeps the diversion"
# An upgrade of QEMU while diverted: the same version again, from Debian's archive.
qemu_ver=$(dpkg-query -W -f='${Version}' qemu-system-common)
(cd "$WORK" && apt-get download -q "qemu-system-common=$qemu_ver" >/dev/null 2>&1) ||
    fail "cannot download qemu-system-common $qemu_ver (apt-get download) for the upgrade check"
dpkg -i --force-confdef --force-confold "$WORK"/qemu-system-common_*.deb >/dev/null
check_helper_enabled "after reinstalling qemu-system-common"
ok "an upgrade of qemu-system-common writes its helper to .distrib and leaves our link"
qemu-ifup-rs-divert bridge-helper disable
[ ! -L "$HELPER" ] && [ -f "$HELPER" ] || fail "disable: $HELPER is not a regular file again"
[ "$(md5sum <"$HELPER" | cut -d' ' -f1)" = "$helper_sum" ] || fail "disable: $HELPER is not QEMU's helper"
[ "$(stat -c '%a %U:%G' "$HELPER")" = "$helper_stat" ] || fail "disable: $HELPER lost its mode"
[ -z "$(dpkg-divert --listpackage "$HELPER")" ] || fail "disable left the diversion of $HELPER"
[ ! -e "$HELPER.distrib" ] || fail "disable left $HELPER.distrib"
ok "bridge-helper disable: QEMU's helper is back, no diversion"
# Leave all in force for the removal: dpkg -r must undo the diversions, purge the statoverride.
qemu-ifup-rs-divert enable >/dev/null
qemu-ifup-rs-divert bridge-helper enable >/dev/null
qemu-ifup-rs-privilege none >/dev/null

# ---------------------------------------------------------------------------------------------
step "12. dpkg -r leaves only the conffiles and undoes the diversions; dpkg -P leaves nothing"
cp /etc/qemu-ifup-rs.conf "$WORK/conf-before-remove"
dpkg -r "$PKG"
dpkg-query -W -f='${Status}\n' "$PKG" | has 'deinstall ok config-files' || fail "status after dpkg -r: $(dpkg-query -W -f='${Status}' "$PKG")"
while IFS= read -r f; do
    [ -d "$f" ] && [ ! -L "$f" ] && continue # shared directories (/etc, /usr/share/man/man8 ...)
    if [ "$f" = "$CONF" ]; then
        cmp -s "$f" "$WORK/conf-before-remove" || fail "dpkg -r changed $CONF"
    elif [ "$f" = "$RT_PROTOS" ]; then
        [ -f "$f" ] || fail "dpkg -r removed the conffile $RT_PROTOS (only purge should)"
    elif [ -e "$f" ] || [ -L "$f" ]; then
        fail "dpkg -r left $f"
    fi
done <"$WORK/files"
[ ! -e /usr/share/doc/qemu-ifup-rs ] || fail "dpkg -r left /usr/share/doc/qemu-ifup-rs"
[ -z "$(dpkg-divert --list | grep "$PKG" || true)" ] || fail "dpkg -r left a diversion: $(dpkg-divert --list | grep "$PKG")"
[ ! -L /etc/qemu-ifup ] || fail "dpkg -r left the /etc/qemu-ifup symlink"
if [ -n "$qemu_sum" ]; then
    [ "$(md5sum </etc/qemu-ifup | cut -d' ' -f1)" = "$qemu_sum" ] || fail "dpkg -r did not give QEMU its /etc/qemu-ifup back"
fi
[ ! -L "$HELPER" ] && [ ! -e "$HELPER.distrib" ] || fail "dpkg -r left the $HELPER symlink or .distrib"
[ "$(md5sum <"$HELPER" | cut -d' ' -f1)" = "$helper_sum" ] || fail "dpkg -r did not give QEMU its $HELPER back"
dpkg-statoverride --list "$UP" >/dev/null || fail "dpkg -r dropped the statoverride (only purge should)"
ok "dpkg -r: only the conffiles $CONF and $RT_PROTOS left (and the admin's statoverride); QEMU's scripts and bridge helper are back"
dpkg -P "$PKG"
installed=
dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | has -v 'not-installed' && fail "$PKG still known to dpkg after purge"
[ ! -e "$CONF" ] || fail "dpkg -P left $CONF"
[ ! -e "$RT_PROTOS" ] || fail "dpkg -P left $RT_PROTOS"
compgen -G "$CONF.*" >/dev/null && fail "dpkg -P left $(compgen -G "$CONF.*")"
for f in "$UP" "$DOWN"; do
    ! dpkg-statoverride --list "$f" >/dev/null || fail "dpkg -P left the statoverride of $f"
done
[ -z "$(dpkg-divert --list | grep "$PKG" || true)" ] || fail "dpkg -P left a diversion"
while IFS= read -r f; do
    [ -d "$f" ] && [ ! -L "$f" ] && continue
    [ ! -e "$f" ] && [ ! -L "$f" ] || fail "dpkg -P left $f"
done <"$WORK/files"
ok "dpkg -P: nothing left (files, conffile, statoverride, diversion)"
mkdir -p "$WORK/pkg/deb"
dpkg-deb -x "$deb" "$WORK/pkg/deb"

# A scratch directory for file-capability checks must take them (the RPM's %caps needs it).
cap_probe=$(mktemp "$WORK/.cap-probe.XXXXXX")
setcap cap_net_admin+ep "$cap_probe" 2>/dev/null ||
    fail "$WORK's filesystem does not store file capabilities: set TMPDIR to one that does (ext4, xfs, tmpfs)"
rm -f "$cap_probe"

# ---------------------------------------------------------------------------------------------
if [ "${PACKAGE_TEST_RPM:-1}" = 1 ]; then
    step "13. RPM: the README's build command; installed into a scratch root with rpm"
    rpm_file=target/packages/$PKG-$VERSION-1.$ARCH_UNAME.rpm
    rm -f "$rpm_file"
    run_readme 'packaging/build-rpm.sh' >"$WORK/rpmbuild.log" 2>&1 ||
        { tail -n 40 "$WORK/rpmbuild.log"; fail "the README's build-rpm.sh command failed"; }
    [ -f "$rpm_file" ] || fail "the README's build-rpm.sh command made no $rpm_file"
    echo "built $rpm_file in $((SECONDS - step_start)) s"
    # rpm_install ROOT RPM: an empty root with the host's users and groups (so that root:kvm
    # means the same), RPM installed into it without dependencies (the root has no libc).
    rpm_install() {
        mkdir -p "$1/etc"
        cp /etc/passwd /etc/group "$1/etc/"
        rpm --root "$1" --dbpath /var/lib/rpm --initdb
        rpm --root "$1" --dbpath /var/lib/rpm -i --nodeps --noscripts "$2" 2>"$WORK/rpm.err" ||
            { cat "$WORK/rpm.err"; fail "rpm -i $2 into $1 failed"; }
    }
    rpmq() { local r=$1; shift; rpm --root "$r" --dbpath /var/lib/rpm "$@" 2>/dev/null; }
    R=$WORK/rpm-root
    rpm_install "$R" "$rpm_file"
    rpmq "$R" -ql "$PKG" >"$WORK/rpm-files"
    for f in "$UP" "$DOWN" "$CONF" "$RT_PROTOS" /usr/share/man/man8/qemu-ifup-rs.8 /usr/share/man/man8/qemu-ifdown-rs.8 \
        /usr/share/man/man5/qemu-ifup-rs.conf.5 "/usr/share/licenses/$PKG-$VERSION/LICENSE-MIT" \
        "/usr/share/doc/$PKG-$VERSION/GUIDE.md" "/usr/share/doc/$PKG-$VERSION/bridge.conf.example"; do
        # Man pages: gzipped by brp-compress on Fedora, left as they are by Debian's rpm.
        grep -qxE "${f//./[.]}(\.gz)?" "$WORK/rpm-files" || fail "the RPM lacks $f"
        compgen -G "$R$f*" >/dev/null || fail "$f is listed but not installed in $R"
    done
    ok "RPM: all expected files installed"
    for f in "$UP" "$DOWN"; do
        [ "$(stat -c '%a %U:%G' "$R$f")" = "755 root:root" ] || fail "RPM $f: $(stat -c '%a %U:%G' "$R$f")"
        [ "$(getcap "$R$f" | sed 's/^[^ ]* //')" = "cap_net_admin=ep" ] || fail "RPM $f: caps '$(getcap "$R$f")'"
    done
    [ "$(stat -c '%a %U:%G' "$R$CONF")" = "644 root:root" ] || fail "RPM $CONF: $(stat -c '%a %U:%G' "$R$CONF")"
    rpmq "$R" -V --nodeps "$PKG" || fail "rpm -V: the installed files differ from the package: $(rpmq "$R" -V --nodeps "$PKG")"
    ok "RPM: helpers 0755 root:root with cap_net_admin=ep, config 0644; rpm -V clean (modes, capabilities, digests)"
    flags=$(rpmq "$R" -q --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$PKG" | awk -v f="$CONF" '$2 == f {print $1}')
    [ "$flags" = cn ] || fail "RPM $CONF has file flags '$flags', not cn (%config(noreplace))"
    flags=$(rpmq "$R" -q --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$PKG" | awk -v f="$RT_PROTOS" '$2 == f {print $1}')
    [ "$flags" = cn ] || fail "RPM $RT_PROTOS has file flags '$flags', not cn (%config(noreplace))"
    cmp -s "$R$RT_PROTOS" packaging/rt_protos.conf || fail "RPM $RT_PROTOS is not packaging/rt_protos.conf"
    echo '# a local change' >>"$R$CONF"
    rpm --root "$R" --dbpath /var/lib/rpm -U --replacepkgs --nodeps --noscripts "$rpm_file" 2>/dev/null
    tail -n 1 "$R$CONF" | has -x '# a local change' || fail "reinstalling the RPM overwrote the changed $CONF"
    cp -a "$R/usr/libexec" "$WORK/pkg/rpm-libexec"
    rpm --root "$R" --dbpath /var/lib/rpm -e --nodeps --noscripts "$PKG" 2>/dev/null
    [ ! -e "$R$UP" ] || fail "rpm -e left $UP"
    tail -n 1 "$R$CONF.rpmsave" 2>/dev/null | has -x '# a local change' || fail "rpm -e did not keep the changed $CONF as .rpmsave"
    ok "RPM: $CONF is %config(noreplace): a local change survives a reinstall, rpm -e keeps it as .rpmsave; $RT_PROTOS is %config(noreplace) too"

    setuid_cmd='packaging/build-rpm.sh target/packages/setuid --with setuid'
    has -F "$setuid_cmd" packaging/README.md || fail "packaging/README.md no longer shows '$setuid_cmd'"
    printf '+ %s\n' "$setuid_cmd"
    rm -f "target/packages/setuid/$(basename "$rpm_file")"
    bash -c "$setuid_cmd" >"$WORK/rpmbuild-setuid.log" 2>&1 ||
        { tail -n 40 "$WORK/rpmbuild-setuid.log"; fail "$setuid_cmd failed"; }
    R=$WORK/rpm-root-setuid
    rpm_install "$R" "target/packages/setuid/$(basename "$rpm_file")"
    for f in "$UP" "$DOWN"; do
        [ "$(stat -c '%a %U:%G' "$R$f")" = "4750 root:kvm" ] || fail "setuid RPM $f: $(stat -c '%a %U:%G' "$R$f")"
        [ -z "$(getcap "$R$f")" ] || fail "setuid RPM $f has file capabilities"
    done
    rpmq "$R" -V --nodeps "$PKG" || fail "rpm -V (setuid): $(rpmq "$R" -V --nodeps "$PKG")"
    ok "RPM --with setuid: helpers 4750 root:kvm, no file capabilities; rpm -V clean"
else
    step "13. RPM: SKIPPED (PACKAGE_TEST_RPM=0)"
fi

# ---------------------------------------------------------------------------------------------
if [ "${PACKAGE_TEST_ARCH:-1}" = 1 ]; then
    step "14. Arch: the README's makepkg command, as a normal user, in a git checkout of its own"
    # The checkout: this tree (uncommitted work included) committed to a fresh git repository
    # owned by uid $BUILD_UID. makepkg unpacks its tarball into packaging/arch/src/ inside it,
    # as it does in any packager's checkout.
    A=$WORK/arch
    mkdir -p "$A/home" "$A/toolchain"
    chmod 0755 "$A"
    tarball=$(packaging/source-tarball.sh "$A")
    tar -xzf "$tarball" -C "$A"
    rm -f "$tarball"
    mv "$A/$PKG-$VERSION" "$A/checkout"
    chown -R "$BUILD_UID:$BUILD_UID" "$A/checkout" "$A/home"
    # as_builder CMD: bash -c CMD in the checkout as uid $BUILD_UID, with a clean environment.
    # The Rust toolchain may live under /root (rustup), which that user cannot enter: its
    # sysroot is bind-mounted read-only at $A/toolchain, in a mount namespace of this call only.
    sysroot=$(rustc --print sysroot)
    [ -x "$sysroot/bin/cargo" ] || fail "no cargo next to rustc in $sysroot"
    as_builder() {
        # shellcheck disable=SC2016 # expanded by the inner bash
        unshare --mount --propagation private bash -c '
            mount --bind -o ro "$1" "$2/toolchain"
            cd "$2/checkout"
            exec setpriv --reuid="$3" --regid="$3" --clear-groups \
                env -i HOME="$2/home" PATH="$2/toolchain/bin:/usr/bin:/bin" LANG=C.UTF-8 TERM=dumb \
                bash -c "$4"' as-builder "$sysroot" "$A" "$BUILD_UID" "$1"
    }
    as_builder 'git init -q && git add -A && git -c user.name=package-test -c user.email=package-test@example.invalid commit -q -m checkout'
    arch_cmd=$(readme_cmd 'packaging/source-tarball.sh packaging/arch')
    printf '+ (as uid %s in %s) %s\n' "$BUILD_UID" "$A/checkout" "$arch_cmd"
    as_builder "$arch_cmd" >"$WORK/makepkg.log" 2>&1 ||
        { tail -n 40 "$WORK/makepkg.log"; fail "the README's makepkg command failed (log above)"; }
    pkgfile=$(compgen -G "$A/checkout/packaging/arch/$PKG-$VERSION-1-$ARCH_UNAME.pkg.tar.*" || true)
    [ -n "$pkgfile" ] && [ -f "$pkgfile" ] || fail "makepkg made no $PKG-$VERSION-1-$ARCH_UNAME.pkg.tar.*"
    echo "built $pkgfile in $((SECONDS - step_start)) s"
    ok "the README's Arch command built $(basename "$pkgfile") as uid $BUILD_UID, inside the checkout"
    [ -z "$(as_builder 'git status --porcelain')" ] ||
        fail "makepkg left files git does not ignore: $(as_builder 'git status --porcelain')"
    as_builder "packaging/source-tarball.sh $A/home/again >/dev/null"
    if tar -tzf "$A/home/again/$PKG-$VERSION.tar.gz" | grep -E '^[^/]*/packaging/arch/(src|pkg)/|\.pkg\.tar|arch/[^/]*\.tar\.gz$'; then
        fail "a source tarball made after makepkg contains makepkg's products (above)"
    fi
    ok "makepkg's products are ignored by git and left out of the next source tarball"

    bsdtar -tvf "$pkgfile" | awk '{print $1, $3, $4, $NF}' >"$WORK/arch-list"
    for want in "-rwxr-xr-x root root usr/libexec/qemu-ifup-rs" "-rwxr-xr-x root root usr/libexec/qemu-ifdown-rs" \
        "-rw-r--r-- root root etc/qemu-ifup-rs.conf" "-rw-r--r-- root root etc/iproute2/rt_protos.d/qemu-ifup-rs.conf" \
        "-rw-r--r-- root root usr/share/man/man8/qemu-ifup-rs.8.gz" \
        "-rw-r--r-- root root usr/share/man/man5/qemu-ifup-rs.conf.5.gz" \
        "-rw-r--r-- root root usr/share/licenses/$PKG/LICENSE-MIT" "-rw-r--r-- root root usr/share/doc/$PKG/GUIDE.md" \
        "-rw-r--r-- root root .INSTALL"; do
        has -xF -- "$want" "$WORK/arch-list" || fail "the Arch package lacks '$want': $(cat "$WORK/arch-list")"
    done
    bsdtar -tvf "$pkgfile" | has -E '^l.* usr/share/man/man8/qemu-ifdown-rs\.8\.gz -> qemu-ifup-rs\.8\.gz$' ||
        fail "the Arch package lacks the qemu-ifdown-rs.8.gz link"
    pkginfo=$(bsdtar -xOf "$pkgfile" .PKGINFO)
    has -x 'backup = etc/qemu-ifup-rs.conf' <<<"$pkginfo" || fail ".PKGINFO has no backup = etc/qemu-ifup-rs.conf"
    has -x "backup = ${RT_PROTOS#/}" <<<"$pkginfo" || fail ".PKGINFO has no backup = ${RT_PROTOS#/}"
    [ "$(sed -n 's/^depend = //p' <<<"$pkginfo" | tr '\n' ' ')" = "glibc libcap " ] ||
        fail ".PKGINFO depends: $(sed -n 's/^depend = //p' <<<"$pkginfo" | tr '\n' ' ')"
    bsdtar -xOf "$pkgfile" .INSTALL | cmp -s - packaging/arch/qemu-ifup-rs.install || fail ".INSTALL is not packaging/arch/qemu-ifup-rs.install"
    ok "Arch package: files and modes (helpers 0755, configs 0644, all root), backup=(etc/qemu-ifup-rs.conf ${RT_PROTOS#/}), depends glibc libcap, .INSTALL"

    # Installed into a scratch root with Debian's pacman, without scriptlets (the root has no
    # shell to chroot into); the install script then runs from that root as pacman would run
    # it (pacman: cd into the root, then the function; the script names paths relative to it).
    P=$WORK/pacman-root
    pacman_root() { pacman --root "$P" --dbpath "$P/var/lib/pacman" --noconfirm "$@"; }
    mkdir -p "$P/var/lib/pacman"
    pacman_root -U --nodeps --nodeps --noscriptlet "$pkgfile" >/dev/null
    scriptlet=$P/var/lib/pacman/local/$PKG-$VERSION-1/install
    [ -f "$scriptlet" ] || fail "pacman recorded no install script"
    run_scriptlet() { # run_scriptlet ROOT FUNCTION
        (cd "$1" && bash -c '. "$1" && "$2" "$3"' scriptlet "$scriptlet" "$2" "$VERSION-1")
    }
    out=$(run_scriptlet "$P" post_install)
    echo "$out"
    for f in "$UP" "$DOWN"; do
        [ "$(stat -c '%a %U:%G' "$P$f")" = "755 root:root" ] || fail "Arch post_install $f: $(stat -c '%a %U:%G' "$P$f")"
        [ "$(getcap "$P$f" | sed 's/^[^ ]* //')" = "cap_net_admin=ep" ] || fail "Arch post_install $f: caps '$(getcap "$P$f")'"
    done
    has 'file capability cap_net_admin+ep set' <<<"$out" || fail "post_install did not say what it did"
    ok "Arch post_install: cap_net_admin=ep on both helpers (0755 root:root), and says so"
    # Where the filesystem takes no file capabilities (ramfs), the documented fallback.
    mkdir -p "$WORK/ramfs"
    # shellcheck disable=SC2016 # expanded by the inner bash
    out=$(unshare --mount --propagation private bash -c '
        set -e
        mount -t ramfs ramfs "$1/ramfs"
        cp -a "$2/usr" "$1/ramfs/"
        setcap -r "$1/ramfs$3" "$1/ramfs$4" 2>/dev/null || true
        cd "$1/ramfs" && bash -c ". \"\$1\" && post_install" scriptlet "$5"
        stat -c "%a %U:%G" "$1/ramfs$3" "$1/ramfs$4"
        for f in "$1/ramfs$3" "$1/ramfs$4"; do getcap "$f"; done
    ' ns "$WORK" "$P" "$UP" "$DOWN" "$scriptlet")
    echo "$out"
    [ "$(grep -c -x '4750 root:kvm' <<<"$out")" = 2 ] || fail "Arch post_install on ramfs did not fall back to 4750 root:kvm"
    ! has 'cap_' <<<"$out" || fail "Arch post_install on ramfs left file capabilities"
    has 'setuid root for group kvm' <<<"$out" || fail "post_install on ramfs did not say it fell back"
    ok "Arch post_install where the filesystem takes no file capabilities (ramfs): 4750 root:kvm"

    pacman_root -Qii "$PKG" | has -P "^UNMODIFIED\t$P$CONF$" || fail "pacman does not list $CONF as an unmodified backup file"
    echo '# a local change' >>"$P$CONF"
    pacman_root -Qii "$PKG" | has -P "^MODIFIED\t$P$CONF$" || fail "pacman does not see the change to $CONF"
    pacman_root -U --nodeps --nodeps --noscriptlet "$pkgfile" >/dev/null 2>&1 # an upgrade, to pacman
    tail -n 1 "$P$CONF" | has -x '# a local change' || fail "reinstalling the Arch package overwrote the changed $CONF"
    [ -z "$(getcap "$P$UP")" ] || fail "pacman kept the capability of a replaced file?"
    run_scriptlet "$P" post_upgrade >/dev/null
    [ "$(getcap "$P$UP" | sed 's/^[^ ]* //')" = "cap_net_admin=ep" ] || fail "post_upgrade did not set the capability again"
    cp -a "$P/usr/libexec" "$WORK/pkg/arch-libexec"
    pacman_root -R --nodeps --nodeps --noscriptlet "$PKG" >/dev/null 2>&1
    [ ! -e "$P$UP" ] || fail "pacman -R left $UP"
    tail -n 1 "$P$CONF.pacsave" 2>/dev/null | has -x '# a local change' || fail "pacman -R did not keep the changed $CONF as .pacsave"
    ok "Arch: $CONF is a backup file (a local change survives an upgrade, pacman -R keeps it as .pacsave); post_upgrade sets the capability again"
else
    step "14. Arch: SKIPPED (PACKAGE_TEST_ARCH=0)"
fi

# ---------------------------------------------------------------------------------------------
step "15. One binary: the helpers of every format"
printf '%-14s %10s %10s %10s\n' helper .deb RPM Arch
for name in qemu-ifup-rs qemu-ifdown-rs; do
    sizes=()
    for fmt in deb rpm arch; do
        case $fmt in deb) f=$WORK/pkg/deb/usr/libexec/$name ;; *) f=$WORK/pkg/$fmt-libexec/$name ;; esac
        if [ ! -f "$f" ]; then sizes+=(-); continue; fi
        needed=$(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
        [ "$needed" = "libc.so.6 " ] || fail "$fmt $name needs '$needed', not just libc.so.6 (is build.rs's static unwinder gone?)"
        ! readelf -S "$f" | has -E '\.symtab|\.debug_' || fail "$fmt $name is not stripped"
        sizes+=("$(stat -c %s "$f")")
    done
    printf '%-14s %10s %10s %10s\n' "$name" "${sizes[@]}"
    for s in "${sizes[@]}"; do
        [ "$s" = - ] && continue
        diff=$((s - sizes[0]))
        [ "${diff#-}" -le 4096 ] || fail "$name: ${sizes[*]} bytes: the formats differ by more than 4 KiB"
    done
done
ok "the helpers of every format built are stripped, load only libc.so.6, and are the same size within 4 KiB"

printf '\npackage test finished in %d s\n' "$((SECONDS - start))"
printf 'package-test: %d passed, 0 failed\n' "$passed"
