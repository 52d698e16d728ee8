#!/usr/bin/env bash
# The installed-package test, as root on Debian (CI runs it): build the .deb, install it with
# apt, check what it installed (files, modes, file capabilities, conffile, man pages), run the
# real-QEMU end-to-end tests against the INSTALLED /usr/libexec/qemu-ifup-rs, run QEMU as an
# unprivileged user in the package's default privilege mode, switch modes with
# qemu-ifup-rs-privilege and divert QEMU's /etc/qemu-ifup with qemu-ifup-rs-divert, then check
# that `dpkg -r` leaves only the conffile and `dpkg -P` leaves nothing. Then build the RPM.
#
# Everything that touches the network happens in throwaway network namespaces; the files the
# unprivileged run needs in /etc (the ACL) live in an overlay seen only by that run.
# The package is purged on exit, also on failure. Refuses to run if qemu-ifup-rs is already
# installed or /etc/qemu-ifup-rs.conf exists: it would not be ours to remove.
#
# Environment: PACKAGE_TEST_RPM=0 skips the RPM build; PACKAGE_TEST_LINTIAN=0 skips lintian.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PKG=qemu-ifup-rs
UP=/usr/libexec/qemu-ifup-rs
DOWN=/usr/libexec/qemu-ifdown-rs
CONF=/etc/qemu-ifup-rs.conf
TEST_UID=4242 # the unprivileged user: no account needed
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

[ "$(id -u)" = 0 ] || fail "run as root: it installs a package and creates namespaces, bridges and taps"
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | has -v 'not-installed'; then
    fail "$PKG is already installed (or its conffile is left): purge it first (dpkg -P $PKG)"
fi
[ ! -e "$CONF" ] || fail "$CONF exists but $PKG is not installed: move it away first"

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
step "1. Packages needed: QEMU & co (scripts/deps.sh), debhelper, man-db, mandoc"
bash scripts/deps.sh
need=(debhelper man-db mandoc)
if [ "${PACKAGE_TEST_RPM:-1}" = 1 ] && ! command -v rpmbuild >/dev/null; then need+=(rpm); fi
if [ "${PACKAGE_TEST_LINTIAN:-1}" = 1 ] && ! command -v lintian >/dev/null; then need+=(lintian); fi
bash scripts/deps.sh "${need[@]}"

# ---------------------------------------------------------------------------------------------
step "2. Build the .deb (packaging/build-deb.sh)"
# The unit tests run in CI's cargo test already.
deb=$(DEB_BUILD_OPTIONS=nocheck packaging/build-deb.sh "$WORK/out" | tail -n 1)
[ -f "$deb" ] || fail "no .deb built"
echo "built $deb in $((SECONDS - step_start)) s"
if [ "${PACKAGE_TEST_LINTIAN:-1}" = 1 ]; then
    lintian --fail-on error,warning "$deb" || fail "lintian found problems in $deb"
    ok "lintian: no errors or warnings"
fi

# ---------------------------------------------------------------------------------------------
step "3. apt-get install ./$(basename "$deb")"
cp "$deb" "$WORK/"
installed=1
(cd "$WORK" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$(basename "$deb")")
dpkg-query -W -f='${Status}\n' "$PKG" | has 'install ok installed' || fail "$PKG is not installed"
ok "installed"

# ---------------------------------------------------------------------------------------------
step "4. What the package installed"
dpkg -L "$PKG" | sort >"$WORK/files"
expect_files=(
    "$UP" "$DOWN" "$CONF"
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
step "6. The shipped $CONF behaves like no config: the bridge of the default route"
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
case $check in
qemu)
    # QEMU itself runs as the user, with the installed helpers as script= and downscript=.
    "${as_user[@]}" env -i PATH="$CLEAN_PATH" qemu-system-x86_64 \
        -accel tcg -m 256 -nodefaults -no-reboot -display none -monitor none -serial stdio \
        -kernel "$WORK/guest/kernel" -initrd "$WORK/guest/initrd" \
        -append "console=ttyS0 panic=-1 quiet ifup_rs.ip=10.0.2.15/24 ifup_rs.ping=10.0.2.1" \
        -netdev "tap,id=n0,ifname=$TAP,script=$UP,downscript=$DOWN" \
        -device virtio-net-pci,netdev=n0,romfile= \
        </dev/null >"$WORK/console" 2>"$WORK/qemu.err" &
    qemu=$!
    attached=
    for _ in $(seq 600); do
        if [ "$(master "$TAP")" = br0 ]; then attached=1; break; fi
        kill -0 "$qemu" 2>/dev/null || break
        sleep 0.1
    done
    uid=$(awk '/^Uid:/ {print $2}' "/proc/$qemu/status" 2>/dev/null || echo gone)
    ip -d link show dev "$TAP"
    mtu=$(ip -j link show dev "$TAP" | sed -n 's/.*"mtu":\([0-9]*\).*/\1/p')
    rc=0
    timeout 120 tail --pid="$qemu" -f /dev/null || true
    wait "$qemu" || rc=$?
    cat "$WORK/console"
    cat "$WORK/qemu.err"
    [ -n "$attached" ] || { echo "the tap never reached br0"; exit 1; }
    [ "$uid" = "$TEST_UID" ] || [ "$uid" = gone ] || { echo "QEMU ran as uid $uid"; exit 1; }
    [ "$mtu" = 1400 ] || { echo "the tap has MTU $mtu, not br0's 1400"; exit 1; }
    grep -q GUEST-PING-OK "$WORK/console" || { echo "the guest could not ping 10.0.2.1"; exit 1; }
    [ "$rc" = 0 ] || { echo "QEMU exited with status $rc"; exit 1; }
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
    kvm=$(getent group kvm | cut -d: -f3)
    if "${as_user[@]}" "$WORK/exec-probe" 2>/dev/null; then
        # Seen on some sandboxed kernels: a file with any x bit runs for everyone.
        echo "NOTE: uid $TEST_UID can execute a root-only (0700) file on this machine: the kernel"
        echo "      does not enforce exec permission bits, so 'mode 4750 keeps users outside"
        echo "      group kvm out' cannot be checked here"
    else
        expect_exit 126 'Permission denied' "${as_user[@]}" "$UP" "$TAP"
    fi
    "${as_user[@]/--clear-groups/--groups=$kvm}" "$UP" "$TAP"
    [ "$(master "$TAP")" = br0 ] || { echo "not attached by the kvm member"; exit 1; }
    is_up "$TAP" || { echo "not up"; exit 1; }
    "${as_user[@]/--clear-groups/--groups=$kvm}" "$DOWN" "$TAP"
    [ -z "$(master "$TAP")" ] || { echo "not detached"; exit 1; }
    ! is_up "$TAP" || { echo "still up"; exit 1; }
    ;;
none)
    expect_exit 1 'CAP_NET_ADMIN' "${as_user[@]}" "$UP" "$TAP"
    [ -z "$(master "$TAP")" ] || exit 1
    ;;
default-script)
    # qemu-ifup-rs-divert enable: QEMU's default /etc/qemu-ifup (no script= given) is ours.
    env -i PATH="$CLEAN_PATH" qemu-system-x86_64 \
        -accel tcg -m 256 -nodefaults -no-reboot -display none -monitor none -serial stdio \
        -kernel "$WORK/guest/kernel" -initrd "$WORK/guest/initrd" \
        -append "console=ttyS0 panic=-1 quiet ifup_rs.ip=10.0.2.15/24 ifup_rs.ping=10.0.2.1" \
        -netdev "tap,id=n0,ifname=roottap0" -device virtio-net-pci,netdev=n0,romfile= \
        </dev/null >"$WORK/console" 2>"$WORK/qemu.err" || { cat "$WORK/qemu.err"; exit 1; }
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
(cd "$WORK" && dpkg -i "./$(basename "$deb")" >/dev/null) # an upgrade, as far as dpkg is concerned
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
qemu-ifup-rs-divert enable
qemu-ifup-rs-divert enable >/dev/null # twice is fine
[ "$(readlink /etc/qemu-ifup)" = "$UP" ] && [ "$(readlink /etc/qemu-ifdown)" = "$DOWN" ] ||
    fail "/etc/qemu-ifup is not our symlink"
[ "$(dpkg-divert --listpackage /etc/qemu-ifup)" = "$PKG" ] || fail "/etc/qemu-ifup is not diverted by $PKG"
if [ -n "$qemu_sum" ]; then
    [ "$(md5sum </etc/qemu-ifup.distrib | cut -d' ' -f1)" = "$qemu_sum" ] || fail "/etc/qemu-ifup.distrib is not QEMU's script"
fi
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
# Leave both in force for the removal: dpkg -r must undo the diversion, purge the statoverride.
qemu-ifup-rs-divert enable >/dev/null
qemu-ifup-rs-privilege none >/dev/null

# ---------------------------------------------------------------------------------------------
step "11. dpkg -r leaves only the conffile; dpkg -P leaves nothing"
cp /etc/qemu-ifup-rs.conf "$WORK/conf-before-remove"
dpkg -r "$PKG"
dpkg-query -W -f='${Status}\n' "$PKG" | has 'deinstall ok config-files' || fail "status after dpkg -r: $(dpkg-query -W -f='${Status}' "$PKG")"
while IFS= read -r f; do
    [ -d "$f" ] && [ ! -L "$f" ] && continue # shared directories (/etc, /usr/share/man/man8 ...)
    if [ "$f" = "$CONF" ]; then
        cmp -s "$f" "$WORK/conf-before-remove" || fail "dpkg -r changed $CONF"
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
dpkg-statoverride --list "$UP" >/dev/null || fail "dpkg -r dropped the statoverride (only purge should)"
ok "dpkg -r: only $CONF left (and the admin's statoverride); the diversion is undone"
dpkg -P "$PKG"
installed=
dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | has -v 'not-installed' && fail "$PKG still known to dpkg after purge"
[ ! -e "$CONF" ] || fail "dpkg -P left $CONF"
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

# ---------------------------------------------------------------------------------------------
if [ "${PACKAGE_TEST_RPM:-1}" = 1 ]; then
    step "12. Build the RPM (packaging/build-rpm.sh, rpmbuild --nodeps on Debian)"
    rpm_file=$(packaging/build-rpm.sh "$WORK/out" 2>"$WORK/rpmbuild.log" | tail -n 1) ||
        { tail -n 40 "$WORK/rpmbuild.log"; fail "rpmbuild failed"; }
    echo "built $rpm_file in $((SECONDS - step_start)) s"
    rpm -qp --filecaps "$rpm_file" | has -x "$UP	cap_net_admin=ep" || fail "$UP has no cap_net_admin in the RPM"
    rpm -qp --configfiles "$rpm_file" | has -x "$CONF" || fail "$CONF is not %config in the RPM"
    rpm -qlp "$rpm_file" | has '/usr/share/man/man5/qemu-ifup-rs.conf.5' || fail "no man page in the RPM"
    rpm -qlp "$rpm_file" | has '/usr/share/licenses/qemu-ifup-rs-[^/]*/LICENSE-MIT' || fail "no %license in the RPM"
    ok "binary RPM built: file capability, %config, man pages, licenses"
fi

printf '\npackage test finished in %d s\n' "$((SECONDS - start))"
printf 'package-test: %d passed, 0 failed\n' "$passed"
