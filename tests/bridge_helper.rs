//! Bridge-helper mode: QEMU's `qemu-bridge-helper` protocol (`-netdev bridge`, libvirt's
//! `<interface type='bridge'>` in `qemu:///session`), run against a helper under test.
//!
//! Every scenario is a function taking the [`Helper`] under test; the `#[test]`s at the bottom
//! bind them to Debian's `/usr/lib/qemu/qemu-bridge-helper` (a setuid-root copy, run by an
//! unprivileged uid). Another helper gets the same scenarios with one line per test. Scenarios
//! assert what any correct helper must do (exit status, the descriptor, the tap's master, MTU and
//! flags, what QEMU and libvirt make of it, that nothing is left behind) and return what the
//! helper said, so that each binding asserts its own helper's messages.
//!
//! Each test runs in its own network namespace ([`Netns`]); the helper reads the test's own
//! `/etc/qemu/bridge.conf` ([`PrivateEtc`] bound over `/etc` in a mount namespace of its own, or
//! the private `/etc` of a [`Libvirtd`] session). Needs root, qemu-system-x86 (with
//! qemu-system-common's helper), busybox-static, linux-image-amd64, util-linux, libcap2-bin and,
//! for the libvirt tests, libvirt-daemon, libvirt-daemon-driver-qemu and libvirt-clients
//! (`scripts/deps.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use ifup_testkit::bridge_helper::{self, HelperCall, HelperOutcome, Invocation};
use ifup_testkit::libvirt::{Domain, Libvirtd, SessionConfig};
use ifup_testkit::privileged::{self, install_copy, Caller, Install, PrivateEtc};
use ifup_testkit::{
    add_bridge, add_veth, ip, links, marker, ports, taps, GuestImage, Link, Netns, NicModel, Qemu,
    QEMU_TIMEOUT,
};

/// The unprivileged user who runs the helper, QEMU and the libvirt session (numeric: no passwd
/// entry is needed, except in the session, which has its own).
const ALICE: u32 = 12350;
/// The bridge every ACL here allows, with an MTU of its own so the tap's is checked.
const BR: &str = "br0";
const BR_MTU: u32 = 1400;
const HOST_IP: &str = "10.0.2.1";
/// A bridge that exists but that the ACL does not allow.
const BR_DENIED: &str = "br-denied";

fn tmp() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

fn alice() -> Caller {
    Caller::new(ALICE, ALICE)
}

/// A bridge helper under test.
#[derive(Debug, Clone)]
struct Helper {
    /// Names the private `/etc`s and domains of the scenarios it runs.
    name: &'static str,
    /// The binary as installed for the test (e.g. a setuid-root copy).
    path: PathBuf,
}

impl Helper {
    fn path_str(&self) -> &str {
        self.path.to_str().expect("helper paths are UTF-8")
    }
}

/// Debian's `qemu-bridge-helper`, copied setuid root (as Debian's own `chmod u+s` would make it)
/// into a directory that uids other than root can reach; the copy is checked against dpkg's MD5.
fn debian() -> Helper {
    let path = install_copy(tmp(), &bridge_helper::debian_helper(), Install::SetuidRoot);
    bridge_helper::assert_debian_helper(&path);
    Helper {
        name: "debian",
        path,
    }
}

/// One test's world: a fresh network namespace with `br0` (MTU 1400, 10.0.2.1/24) and
/// `br-denied`, and a private `/etc` whose `qemu/bridge.conf` allows `br0` alone.
struct World {
    etc: PrivateEtc,
    _ns: Netns,
}

impl World {
    fn new(helper: &Helper, test: &str) -> World {
        let ns = Netns::new();
        add_bridge(BR, Some(BR_MTU));
        ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", BR]);
        add_bridge(BR_DENIED, None);
        let etc = PrivateEtc::new(tmp(), &format!("bh-{}-{test}", helper.name));
        etc.write("qemu/bridge.conf", &format!("allow {BR}\n"));
        World { etc, _ns: ns }
    }

    fn call(&self, invocation: Invocation, bridge: &str) -> HelperCall {
        HelperCall::new(invocation, bridge, &self.etc, &alice())
    }
}

#[track_caller]
fn assert_no_taps(what: &str) {
    assert_eq!(taps(), Vec::<Link>::new(), "{what} left a tap behind");
}

#[track_caller]
fn assert_no_ports(bridge: &str) {
    let ports = ports(bridge);
    assert!(ports.is_empty(), "{bridge} still has ports: {ports:?}");
}

/// A tap the helper made: on `br0`, with its MTU, up, a non-persistent tap.
#[track_caller]
fn assert_tap_on_bridge(l: &Link) {
    assert_eq!(l.master.as_deref(), Some(BR), "{l:#?}");
    assert_eq!(l.mtu, BR_MTU, "the tap takes the bridge's MTU: {l:#?}");
    assert!(l.up, "the tap is up: {l:#?}");
    let tun = l.tun.as_ref().expect("a tun link has tun info");
    assert!(tun.tap && !tun.persist, "a non-persistent tap: {l:#?}");
}

// ---------------------------------------------------------------------------------------------
// The helper alone, run exactly as QEMU and libvirt run it.

/// Every caller's command line succeeds: one byte, one descriptor of a tap (`IFF_TAP|IFF_NO_PI`)
/// that is on `br0` with its MTU and up, with `IFF_VNET_HDR` exactly when `--use-vnet` was passed
/// (from `TUNGETIFF` on the descriptor and from `ip -d`); closing the descriptor removes the tap.
/// Returns each run's outcome (its tap closed).
fn ok_path(helper: &Helper) -> Vec<HelperOutcome> {
    let w = World::new(helper, "ok");
    let shell = format!("{} --br={BR}", helper.path_str());
    let calls = [
        w.call(Invocation::QemuExec(helper.path.clone()), BR),
        w.call(Invocation::QemuShell(shell), BR),
        w.call(Invocation::Libvirt(helper.path.clone()), BR),
        w.call(Invocation::Libvirt(helper.path.clone()), BR)
            .vnet(false),
        w.call(Invocation::QemuExec(helper.path.clone()), BR)
            .vnet(false),
    ];
    let mut outcomes = Vec::new();
    for call in calls {
        let vnet = call.argv().join(" ").contains("--use-vnet");
        let mut out = call.run();
        let tap = out.expect_tap();
        assert_eq!(
            tap.vnet_hdr(),
            vnet,
            "IFF_VNET_HDR iff --use-vnet: {out:#?}"
        );
        let l = tap.link();
        assert_tap_on_bridge(&l);
        assert_eq!(l.tun.as_ref().unwrap().vnet_hdr, vnet, "{l:#?}");
        assert_eq!(taps().len(), 1, "exactly one new tap: {:#?}", taps());
        drop(out.tap.take());
        assert_no_taps("closing the helper's descriptor");
        assert_no_ports(BR);
        outcomes.push(out);
    }
    outcomes
}

/// A refused call changes nothing: exit status not 0, no descriptor, a message on stderr, every
/// link as before. Returns the outcome.
#[track_caller]
fn refused(call: HelperCall, what: &str) -> HelperOutcome {
    let before = links();
    let out = call.run();
    out.expect_refused();
    assert_eq!(links(), before, "{what}: a refused call changed a link");
    out
}

/// `br-denied` exists but `bridge.conf` does not allow it (no rule, then an explicit `deny`
/// after `allow all`): refused, in both argument orders.
fn acl_denied(helper: &Helper) -> Vec<HelperOutcome> {
    let w = World::new(helper, "acl-denied");
    let mut outs = Vec::new();
    for acl in [
        format!("allow {BR}\n"),
        format!("allow all\ndeny {BR_DENIED}\n"),
    ] {
        w.etc.write("qemu/bridge.conf", &acl);
        for inv in [
            Invocation::QemuExec(helper.path.clone()),
            Invocation::Libvirt(helper.path.clone()),
        ] {
            outs.push(refused(w.call(inv, BR_DENIED), &acl));
        }
    }
    outs
}

/// A bridge that does not exist, though the ACL allows it (`allow all`): refused, no tap left.
fn missing_bridge(helper: &Helper) -> HelperOutcome {
    let w = World::new(helper, "missing-bridge");
    w.etc.write("qemu/bridge.conf", "allow all\n");
    refused(
        w.call(Invocation::QemuExec(helper.path.clone()), "br-missing"),
        "a missing bridge",
    )
}

/// A veth (not a bridge) that the ACL allows: refused, no tap left, the veth untouched.
fn not_a_bridge(helper: &Helper) -> HelperOutcome {
    let w = World::new(helper, "not-a-bridge");
    add_veth("veth0", "veth1");
    w.etc.write("qemu/bridge.conf", "allow veth0\n");
    refused(
        w.call(Invocation::QemuExec(helper.path.clone()), "veth0"),
        "a non-bridge",
    )
}

// ---------------------------------------------------------------------------------------------
// QEMU `-netdev bridge`, QEMU run by the unprivileged user.

/// How QEMU's `helper=` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HelperString {
    /// The path alone: QEMU `execv`s it.
    Path,
    /// `PATH --br=br0`: holds a space, so QEMU runs it with `sh -c` (and adds no `--br=`).
    Command,
}

fn helper_string(helper: &Helper, form: HelperString) -> String {
    match form {
        HelperString::Path => helper.path_str().to_owned(),
        HelperString::Command => format!("{} --br={BR}", helper.path_str()),
    }
}

/// The guest image where the unprivileged user can read it.
fn user_image() -> GuestImage {
    GuestImage::get(&privileged::suitable_base(tmp()))
}

/// QEMU as alice with `-netdev bridge,br=br0,helper=…` and `model`: while it runs, one new tap is
/// on br0 with br0's MTU, up, with a vnet header (QEMU always passes `--use-vnet`); the guest pings
/// the host's address on br0; after QEMU exits cleanly no tap is left.
fn qemu_boots_on_bridge(helper: &Helper, form: HelperString, model: NicModel) {
    let w = World::new(helper, &format!("qemu-{form:?}-{model:?}"));
    let before: Vec<String> = links().into_iter().map(|l| l.name).collect();
    let mut vm = Qemu::options_bridge(&user_image(), BR, &helper_string(helper, form))
        .nic_model(model)
        .as_caller(&w.etc, &alice())
        .guest_ip("10.0.2.15/24")
        .ping(HOST_IP)
        .spawn();
    let tap = vm.wait_until(QEMU_TIMEOUT, "a tap on br0", || {
        taps().into_iter().find(|l| l.master.is_some())
    });
    assert_tap_on_bridge(&tap);
    assert!(
        tap.tun.as_ref().unwrap().vnet_hdr,
        "QEMU passes --use-vnet: {tap:#?}"
    );
    assert_eq!(taps().len(), 1, "{:#?}", taps());
    vm.assert_pinged(None);
    let exit = vm.wait_exit(QEMU_TIMEOUT);
    assert_eq!(exit.code, 0, "QEMU should exit cleanly: {exit:#?}");
    assert!(exit.console.contains(marker::POWEROFF), "{exit:#?}");
    assert_no_taps("QEMU");
    assert_no_ports(BR);
    let after: Vec<String> = links().into_iter().map(|l| l.name).collect();
    assert_eq!(after, before);
}

/// QEMU as alice asking for `bridge` (which the helper refuses, as a direct run shows first):
/// QEMU fails to start, its stderr holds the helper's message, the guest never boots, and every
/// link is as before. Returns (the direct run's outcome, QEMU's stderr).
fn qemu_refused(helper: &Helper, w: &World, bridge: &str) -> (HelperOutcome, String) {
    let direct = refused(
        w.call(Invocation::QemuExec(helper.path.clone()), bridge),
        "the helper run directly",
    );
    let message = direct.stderr.trim().to_owned();
    let before = links();
    let vm = Qemu::options_bridge(&user_image(), bridge, helper.path_str())
        .as_caller(&w.etc, &alice())
        .spawn();
    let exit = vm.wait_exit(QEMU_TIMEOUT);
    assert_ne!(exit.code, 0, "QEMU must not start: {exit:#?}");
    assert!(
        exit.stderr.contains(&message),
        "QEMU's stderr should carry the helper's message {message:?}: {exit:#?}"
    );
    // QEMU 7.2's own line: "qemu-system-x86_64: -netdev bridge,…: bridge helper failed".
    assert!(exit.stderr.contains("bridge helper failed"), "{exit:#?}");
    assert!(!exit.console.contains(marker::BOOTED), "{exit:#?}");
    assert_eq!(links(), before, "a refused QEMU changed a link");
    (direct, exit.stderr)
}

/// [`qemu_refused`] for a bridge the ACL does not allow, then for a veth.
fn qemu_refused_bridges(helper: &Helper) -> Vec<(HelperOutcome, String)> {
    let w = World::new(helper, "qemu-refused");
    add_veth("veth0", "veth1");
    let mut outs = vec![qemu_refused(helper, &w, BR_DENIED)];
    w.etc
        .write("qemu/bridge.conf", &format!("allow {BR}\nallow veth0\n"));
    outs.push(qemu_refused(helper, &w, "veth0"));
    outs
}

// ---------------------------------------------------------------------------------------------
// libvirt's session mode: libvirtd as the user runs the helper, QEMU gets the descriptor.

const LIBVIRT_USER: u32 = 12351;

fn session(helper: &Helper) -> Libvirtd {
    Libvirtd::session(
        SessionConfig::new(LIBVIRT_USER, &helper.path).bridge_conf(&format!("allow {BR}\n")),
    )
}

/// `virsh create` of a TCG domain with `<interface type='bridge'><source bridge='br0'/>` and
/// `model`: it starts; while it runs one tap is on br0 (MTU, up), with a vnet header exactly for
/// virtio (libvirt passes `--use-vnet` only then); the guest pings the host. A virtio guest is
/// then stopped with `virsh destroy`, an e1000 guest powers itself off (the transient domain
/// ends); either way no tap is left.
fn libvirt_boots_on_bridge(helper: &Helper, model: NicModel) {
    let _ns = Netns::new();
    add_bridge(BR, Some(BR_MTU));
    ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", BR]);
    let lv = session(helper);
    let name = format!("bh-{}-{model:?}", helper.name);
    let destroy = model == NicModel::VirtioNetPci;
    let mut domain = Domain::new(&name, &user_image(), BR, model)
        .guest_ip("10.0.2.15/24")
        .ping(HOST_IP);
    if destroy {
        domain = domain.hold();
    }
    let out = lv.create(&domain);
    assert_eq!(out.code, 0, "virsh create: {out:#?}\n{}", lv.report(&name));
    let tap = ifup_testkit::wait_until(QEMU_TIMEOUT, "a tap on br0", || {
        taps().into_iter().find(|l| l.master.is_some())
    });
    assert_tap_on_bridge(&tap);
    assert_eq!(
        tap.tun.as_ref().unwrap().vnet_hdr,
        model == NicModel::VirtioNetPci,
        "libvirt passes --use-vnet for virtio only: {tap:#?}"
    );
    assert_eq!(taps().len(), 1, "{:#?}", taps());
    lv.assert_pinged(&name, None);
    if destroy {
        lv.wait_console(&name, &[marker::HOLD], QEMU_TIMEOUT);
        assert_eq!(lv.running(), std::slice::from_ref(&name));
        lv.virsh_ok(&["destroy", &name]);
    }
    lv.wait_gone(&name, QEMU_TIMEOUT);
    ifup_testkit::wait_until(Duration::from_secs(10), "the tap to go", || {
        taps().is_empty().then_some(())
    });
    assert_no_ports(BR);
}

/// `virsh create` on `br-denied`: fails with libvirt's "failed to communicate with bridge helper",
/// no domain runs, no tap is left, and virsh's error carries the helper's message (as a direct run
/// as the same user shows it; see below for libvirt's race). Returns (the direct run's outcome,
/// virsh's stderr).
fn libvirt_refused(helper: &Helper) -> (HelperOutcome, String) {
    let w = World::new(helper, "libvirt-refused");
    // Run directly as the session's user, so a message naming the user is the same.
    let direct = refused(
        HelperCall::new(
            Invocation::Libvirt(helper.path.clone()),
            BR_DENIED,
            &w.etc,
            &Caller::new(LIBVIRT_USER, LIBVIRT_USER),
        ),
        "the helper run directly",
    );
    let message = direct.stderr.trim().to_owned();
    let lv = session(helper);
    let before = links();
    let name = format!("bh-{}-denied", helper.name);
    let domain = Domain::new(&name, &user_image(), BR_DENIED, NicModel::VirtioNetPci);
    // libvirt 9.0 reads the helper's stderr on its event-loop thread, and builds its error as soon
    // as the socket reports EOF: if that thread has not read the pipe yet, the error says just
    // "failed to communicate with bridge helper: : Transport endpoint is not connected" (seen on
    // a first `virsh create`, while libvirtd still probed QEMU). So: up to five attempts, each
    // failing cleanly, and at least one must carry the message.
    let mut attempts = Vec::new();
    for _ in 0..5 {
        let out = lv.create(&domain);
        assert_ne!(out.code, 0, "virsh create must fail: {out:#?}");
        assert!(
            out.stderr
                .contains("failed to communicate with bridge helper"),
            "{out:#?}"
        );
        assert_eq!(lv.running(), Vec::<String>::new());
        assert_eq!(links(), before, "a refused virsh create changed a link");
        let done = out.stderr.contains(&message);
        attempts.push(out.stderr);
        if done {
            return (direct, attempts.pop().unwrap_or_default());
        }
    }
    panic!("virsh's error never carried the helper's message {message:?}: {attempts:#?}");
}

// ---------------------------------------------------------------------------------------------
// Debian's qemu-bridge-helper. Its messages are asserted here, as Debian's; where they fall short
// of what a helper should say, the comment says so (ours must not copy that).

#[test]
fn debian_ok_path() {
    let outs = ok_path(&debian());
    for out in outs {
        assert_eq!(out.stderr, "", "{out:#?}");
        assert_eq!(out.data, [0], "Debian sends one zero byte: {out:#?}");
    }
}

#[test]
fn debian_acl_denied() {
    for out in acl_denied(&debian()) {
        // Debian's message names neither the bridge nor the user nor the file, and the code is
        // a bare 1: ours should name them.
        assert_eq!(out.stderr, "access denied by acl file\n", "{out:#?}");
        assert_eq!(out.code, 1);
    }
}

#[test]
fn debian_missing_bridge() {
    let out = missing_bridge(&debian());
    // Debian creates a tap (tap0) before it looks at the bridge, and removes it by exiting.
    assert_eq!(
        out.stderr, "failed to get mtu of bridge `br-missing': No such device\n",
        "{out:#?}"
    );
}

#[test]
fn debian_not_a_bridge() {
    let out = not_a_bridge(&debian());
    // Debian never checks the kind: it creates tap0, gives it veth0's MTU and a new MAC, and only
    // the bridge ioctl fails. The message names the device as a "bridge".
    assert!(
        out.stderr
            .starts_with("failed to add interface `tap0' to bridge `veth0': "),
        "{out:#?}"
    );
}

#[test]
fn debian_qemu_virtio() {
    qemu_boots_on_bridge(&debian(), HelperString::Path, NicModel::VirtioNetPci);
}

#[test]
fn debian_qemu_e1000_via_sh_c() {
    qemu_boots_on_bridge(&debian(), HelperString::Command, NicModel::E1000);
}

#[test]
fn debian_qemu_refused() {
    let outs = qemu_refused_bridges(&debian());
    assert_eq!(outs[0].0.stderr, "access denied by acl file\n");
}

#[test]
fn debian_libvirt_virtio_destroy() {
    libvirt_boots_on_bridge(&debian(), NicModel::VirtioNetPci);
}

#[test]
fn debian_libvirt_e1000_poweroff() {
    libvirt_boots_on_bridge(&debian(), NicModel::E1000);
}

#[test]
fn debian_libvirt_refused() {
    let (_, virsh) = libvirt_refused(&debian());
    // libvirt quotes the helper's whole stderr (newline included) inside its own error, then
    // appends the socket's errno: "error: HELPER --use-vnet --br=br-denied --fd=27: failed to
    // communicate with bridge helper: stderr=access denied by acl file\n: Transport endpoint is
    // not connected".
    assert!(
        virsh.contains(
            ": failed to communicate with bridge helper: stderr=access denied by acl file\n"
        ),
        "{virsh}"
    );
}

// ---------------------------------------------------------------------------------------------
// Ours: qemu-ifup in bridge-helper mode, as a setuid-root and as a `setcap cap_net_admin+ep`
// copy, run by the same unprivileged user. A site that replaces Debian's helper changes only the
// helper's path: the same scenarios pass, with messages that name the bridge, the user and why.

const OURS: [Install; 2] = [Install::SetuidRoot, Install::FileCaps];

fn ours(how: Install) -> Helper {
    Helper {
        name: match how {
            Install::SetuidRoot => "ours-suid",
            _ => "ours-fcaps",
        },
        path: install_copy(tmp(), Path::new(env!("CARGO_BIN_EXE_qemu-ifup")), how),
    }
}

#[test]
fn ours_ok_path() {
    for how in OURS {
        for out in ok_path(&ours(how)) {
            assert_eq!(out.stderr, "", "{how:?}: {out:#?}");
            assert_eq!(out.data, [0], "one zero byte, as Debian's: {out:#?}");
        }
    }
}

#[test]
fn ours_acl_denied() {
    for how in OURS {
        let outs = acl_denied(&ours(how));
        for out in &outs {
            assert_eq!(out.code, 1, "{out:#?}");
            assert_eq!(out.stderr.lines().count(), 1, "one line: {out:#?}");
            assert!(
                out.stderr
                    .starts_with("qemu-ifup: error: bridge br-denied: denied: "),
                "{out:#?}"
            );
            assert!(out.stderr.contains(&format!("uid {ALICE}")), "{out:#?}");
        }
        assert!(
            outs[0].stderr.contains("does not allow bridge br-denied"),
            "{outs:#?}"
        );
        assert!(
            outs.iter().any(|o| o
                .stderr
                .contains("denied to uid 12350 by /etc/qemu/bridge.conf:")),
            "{outs:#?}"
        );
    }
}

#[test]
fn ours_missing_bridge() {
    let out = missing_bridge(&ours(Install::SetuidRoot));
    assert_eq!(
        out.stderr,
        "qemu-ifup: error: bridge br-missing: the bridge does not exist (given with --br)\n",
        "{out:#?}"
    );
    assert_eq!(out.code, 1);
}

#[test]
fn ours_not_a_bridge() {
    let out = not_a_bridge(&ours(Install::FileCaps));
    assert_eq!(
        out.stderr,
        "qemu-ifup: error: bridge veth0: it is a veth device, not a bridge (given with --br)\n",
        "{out:#?}"
    );
}

/// The tap gets the config's rule for its bridge and name: its MTU, bridge-port options and a
/// host-side MAC starting with fe.
#[test]
fn ours_tap_gets_the_rule_for_its_bridge() {
    for how in OURS {
        let helper = ours(how);
        let w = World::new(&helper, "rule");
        w.etc.write(
            "qemu-ifup-rs.conf",
            "bridge br-denied\ntap tap* bridge br-other hairpin on\ntap tap* bridge br0 isolated on learning off mtu 1300\n",
        );
        let mut out = w.call(Invocation::QemuExec(helper.path.clone()), BR).run();
        let l = out.expect_tap().link();
        assert_eq!(l.master.as_deref(), Some(BR), "{l:#?}");
        assert_eq!(l.mtu, 1300, "{l:#?}");
        assert!(l.address.as_deref().unwrap().starts_with("fe:"), "{l:#?}");
        let port = l.bridge_port.clone().unwrap();
        assert!(
            port.isolated && !port.learning && !port.hairpin,
            "{how:?}: {port:?}"
        );
        drop(out.tap.take());
        assert_no_taps("closing ours");
    }
}

#[test]
fn ours_qemu_virtio() {
    qemu_boots_on_bridge(
        &ours(Install::SetuidRoot),
        HelperString::Path,
        NicModel::VirtioNetPci,
    );
}

#[test]
fn ours_qemu_e1000_via_sh_c() {
    qemu_boots_on_bridge(
        &ours(Install::FileCaps),
        HelperString::Command,
        NicModel::E1000,
    );
}

#[test]
fn ours_qemu_refused() {
    let outs = qemu_refused_bridges(&ours(Install::SetuidRoot));
    for (out, qemu) in &outs {
        let line = out.stderr.trim_end();
        assert!(line.starts_with("qemu-ifup: error: bridge "), "{out:#?}");
        assert!(qemu.contains(line), "QEMU's stderr shows ours: {qemu}");
    }
}

#[test]
fn ours_libvirt_virtio_destroy() {
    libvirt_boots_on_bridge(&ours(Install::SetuidRoot), NicModel::VirtioNetPci);
}

#[test]
fn ours_libvirt_e1000_poweroff() {
    libvirt_boots_on_bridge(&ours(Install::FileCaps), NicModel::E1000);
}

#[test]
fn ours_libvirt_refused() {
    let (out, virsh) = libvirt_refused(&ours(Install::SetuidRoot));
    assert!(
        out.stderr
            .starts_with("qemu-ifup: error: bridge br-denied: denied: "),
        "{out:#?}"
    );
    assert!(
        virsh.contains("stderr=qemu-ifup: error: bridge br-denied: denied: "),
        "{virsh}"
    );
}
