//! End to end: real QEMU (TCG) runs our `qemu-ifup` / `qemu-ifdown` as `script=` / `downscript=`
//! for a tap netdev; a tiny Linux guest pings the host through the bridge.
//!
//! Needs root, /dev/net/tun, qemu-system-x86, busybox-static and linux-image-amd64. Each test runs
//! in its own network namespace (ifup_testkit::Netns), so bridge and tap names repeat freely and
//! the host's interfaces are never touched. A boot-to-poweroff takes ~5 s here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use ifup_testkit::{
    add_bridge, add_bridge_with_default_route, add_tap, ip, link, marker, ports, set_mtu, tool,
    GuestImage, Link, Netns, Qemu, QemuExit, QEMU_TIMEOUT,
};

/// The helpers under test: cargo's, or the installed package's with QEMU_IFUP_RS_INSTALLED=1
/// (scripts/package-test.sh).
fn helpers() -> (std::path::PathBuf, std::path::PathBuf) {
    ifup_testkit::bins::helper_bins(
        env!("CARGO_BIN_EXE_qemu-ifup"),
        env!("CARGO_BIN_EXE_qemu-ifdown"),
    )
}
const SYSTEM_CONFIG: &str = "/etc/qemu-ifup-rs.conf";

fn guest_image() -> GuestImage {
    GuestImage::get(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// The no-config tests depend on the machine having no system config file.
fn assert_no_system_config() {
    assert!(
        !Path::new(SYSTEM_CONFIG).exists(),
        "{SYSTEM_CONFIG} exists on this machine: these tests check qemu-ifup's behaviour without \
         a config file (bridge of the default route); move it away while running them"
    );
}

/// Waits while QEMU runs until `tap` has a master, and returns the link then.
fn wait_attached(vm: &mut Qemu, tap: &str) -> Link {
    vm.wait_until(
        QEMU_TIMEOUT,
        &format!("{tap} to be attached to a bridge"),
        || link(tap).filter(|l| l.master.is_some()),
    )
}

fn qemu_ifup_error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("qemu-ifup:") || l.starts_with("qemu-ifdown:"))
        .collect()
}

/// Waits for QEMU to exit and asserts a clean run: exit status 0, the guest powered off, and not
/// a line from qemu-ifup or qemu-ifdown.
fn assert_clean_exit(vm: Qemu) -> QemuExit {
    let exit = vm.wait_exit(QEMU_TIMEOUT);
    assert_eq!(exit.code, 0, "QEMU should exit cleanly: {exit:#?}");
    assert!(exit.console.contains(marker::POWEROFF), "{exit:#?}");
    assert_eq!(
        qemu_ifup_error_lines(&exit.stderr),
        Vec::<&str>::new(),
        "{exit:#?}"
    );
    exit
}

/// No config: qemu-ifup picks the bridge of the default route, gives the tap the bridge's MTU and
/// brings it up; the guest reaches the host through it; at exit qemu-ifdown detaches the
/// (persistent, so still present) tap and sets it down.
#[test]
fn no_config_attaches_persistent_tap_to_default_route_bridge() {
    assert_no_system_config();
    let _ns = Netns::new();
    add_bridge_with_default_route("br0", "10.0.2.1/24");
    set_mtu("br0", 1400);
    add_tap("vmtap0", None, None);
    let before = link("vmtap0").unwrap();
    assert_eq!(
        (before.master.as_deref(), before.mtu, before.up),
        (None, 1500, false)
    );

    let image = guest_image();
    let mut vm = Qemu::options(&image, "vmtap0")
        .script(helpers().0)
        .downscript(helpers().1)
        .guest_ip("10.0.2.15/24")
        .ping("10.0.2.1")
        .spawn();

    let tap = wait_attached(&mut vm, "vmtap0");
    let attached_after = vm.elapsed();
    assert_eq!(tap.master.as_deref(), Some("br0"), "{tap:#?}");
    assert_eq!(
        tap.mtu, 1400,
        "the tap should take the bridge's MTU: {tap:#?}"
    );
    assert!(tap.up, "the tap should be up: {tap:#?}");
    assert!(
        tap.tun.as_ref().is_some_and(|t| t.tap && t.persist),
        "{tap:#?}"
    );
    assert_eq!(
        link("br0").unwrap().mtu,
        1400,
        "the bridge's MTU must not change"
    );

    vm.assert_pinged(None);
    let pinged_after = vm.elapsed();
    let exit = assert_clean_exit(vm);
    eprintln!(
        "timings: tap attached {attached_after:.1?}, guest pinged {pinged_after:.1?}, \
         QEMU exited {:.1?} after spawn",
        exit.elapsed
    );

    let tap = link("vmtap0").expect("a persistent tap outlives QEMU");
    assert_eq!(
        tap.master, None,
        "qemu-ifdown should detach the tap: {tap:#?}"
    );
    assert!(!tap.up, "qemu-ifdown should set the tap down: {tap:#?}");
    assert!(ports("br0").is_empty(), "br0 should have no ports left");
}

/// A config file named by QEMU_IFUP_CONFIG (in QEMU's environment, which QEMU passes to its
/// scripts) chooses the bridge, over the bridge of the default route. QEMU creates the tap itself
/// (not persistent) and deletes it at exit.
#[test]
fn config_bridge_with_tap_created_by_qemu() {
    let _ns = Netns::new();
    add_bridge_with_default_route("br0", "10.0.2.1/24"); // the decoy
    add_bridge("br-lab", None);
    ip(&["addr", "add", "10.0.3.1/24", "dev", "br-lab"]);
    let config = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-qemu-br-lab.conf");
    std::fs::write(&config, "# written by tests/e2e_qemu.rs\nbridge br-lab\n").unwrap();
    assert!(link("vmtap1").is_none());

    let image = guest_image();
    let mut vm = Qemu::options(&image, "vmtap1")
        .script(helpers().0)
        .downscript(helpers().1)
        .env("QEMU_IFUP_CONFIG", config.to_str().unwrap())
        .guest_ip("10.0.3.15/24")
        .ping("10.0.3.1")
        .spawn();

    let tap = wait_attached(&mut vm, "vmtap1");
    assert_eq!(tap.master.as_deref(), Some("br-lab"), "{tap:#?}");
    assert!(tap.up, "{tap:#?}");
    assert!(
        tap.tun.as_ref().is_some_and(|t| t.tap && !t.persist),
        "QEMU should have made a non-persistent tap: {tap:#?}"
    );
    assert_eq!(tap.mtu, link("br-lab").unwrap().mtu);

    vm.assert_pinged(None);
    assert_clean_exit(vm);
    assert_eq!(link("vmtap1"), None, "QEMU deletes the tap it created");
}

/// No config and no default route: qemu-ifup has no bridge, fails with its one-line error, and
/// QEMU refuses to start the VM.
#[test]
fn no_bridge_anywhere_makes_qemu_fail() {
    assert_no_system_config();
    let _ns = Netns::new();
    assert!(
        ip(&["route", "show", "default"]).trim().is_empty(),
        "a fresh namespace has no default route"
    );

    let image = guest_image();
    let vm = Qemu::options(&image, "vmtap2")
        .script(helpers().0)
        .downscript(helpers().1)
        .guest_ip("10.0.2.15/24")
        .ping("10.0.2.1")
        .spawn();
    let exit = vm.wait_exit(QEMU_TIMEOUT);

    assert_ne!(
        exit.code, 0,
        "QEMU must not start without a bridge: {exit:#?}"
    );
    assert!(
        exit.stderr.contains("network script") && exit.stderr.contains("failed"),
        "QEMU should report the failed network script: {exit:#?}"
    );
    let ours = qemu_ifup_error_lines(&exit.stderr);
    assert_eq!(ours.len(), 1, "exactly one line from qemu-ifup: {exit:#?}");
    assert!(
        ours[0].starts_with("qemu-ifup: error: ") && ours[0].contains("vmtap2"),
        "the error names the tap: {:?}",
        ours[0]
    );
    assert!(
        !exit.console.contains(marker::BOOTED),
        "the guest must not boot: {exit:#?}"
    );
    assert_eq!(link("vmtap2"), None, "QEMU deletes the tap it created");
}

/// Privileged mode end to end: QEMU runs as an unprivileged uid, on a persistent tap that uid
/// owns, with setuid-root copies of qemu-ifup / qemu-ifdown as script/downscript. QEMU runs in a
/// mount namespace of its own with a private `/etc` (config `bridge br-user`, ACL
/// `allow br-user`), so the scripts it spawns read those fixed paths and the machine's `/etc` is
/// never touched. The wrapper that sets this up ([`ifup_testkit::QemuOptions::as_caller`]) execs
/// (unshare, mount, setpriv) down to QEMU with the same pid.
#[test]
fn unprivileged_qemu_with_setuid_scripts_attaches_its_own_tap() {
    use ifup_testkit::privileged::{self, install_copy, Caller, Install, PrivateEtc};

    const USER: u32 = 12347;
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let _ns = Netns::new();
    add_bridge("br-user", None);
    set_mtu("br-user", 1450);
    ip(&["addr", "add", "10.0.4.1/24", "dev", "br-user"]);
    add_tap("vmtap3", Some(USER), None);

    let etc = PrivateEtc::new(tmp, "e2e-qemu-unprivileged");
    etc.write("qemu-ifup-rs.conf", "bridge br-user\n")
        .write("qemu/bridge.conf", "allow br-user\n");
    let ifup = install_copy(tmp, &helpers().0, Install::SetuidRoot);
    let ifdown = install_copy(tmp, &helpers().1, Install::SetuidRoot);
    let real_qemu = tool("qemu-system-x86_64", "qemu-system-x86");

    // QEMU runs as USER: the image must be where USER can read it.
    let image = GuestImage::get(&privileged::suitable_base(tmp));
    let mut vm = Qemu::options(&image, "vmtap3")
        .script(&ifup)
        .downscript(&ifdown)
        .as_caller(&etc, &Caller::new(USER, USER))
        .guest_ip("10.0.4.15/24")
        .ping("10.0.4.1")
        .spawn();

    // The process is QEMU itself, as the user, in a mount namespace of its own.
    let pid = vm.pid();
    let status = vm.wait_until(QEMU_TIMEOUT, "the wrapper to exec QEMU", || {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        (exe == real_qemu)
            .then(|| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .flatten()
    });
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let user = USER.to_string();
    assert_eq!(
        uids.split_whitespace().skip(1).collect::<Vec<_>>(),
        [user.as_str(); 4],
        "QEMU must run as uid {USER}: {uids}"
    );
    let mnt = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).unwrap();
    assert_ne!(mnt(&pid.to_string()), mnt("self"));

    let tap = wait_attached(&mut vm, "vmtap3");
    assert_eq!(tap.master.as_deref(), Some("br-user"), "{tap:#?}");
    assert_eq!(tap.mtu, 1450, "the tap takes the bridge's MTU: {tap:#?}");
    assert!(tap.up, "{tap:#?}");
    assert_eq!(tap.tun.as_ref().and_then(|t| t.owner), Some(USER));

    vm.assert_pinged(None);
    assert_clean_exit(vm);
    let tap = link("vmtap3").expect("a persistent tap outlives QEMU");
    assert_eq!(tap.master, None, "qemu-ifdown should detach it: {tap:#?}");
    assert!(!tap.up, "qemu-ifdown should set it down: {tap:#?}");
}
