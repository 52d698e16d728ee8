//! Privileged mode for real: copies of qemu-ifup / qemu-ifdown installed setuid root (chown root,
//! chmod 4755) and with file capabilities (`setcap cap_net_admin+ep`), run as unprivileged uids
//! with chosen groups, each case in its own network namespace (ifup_testkit::Netns) and its own
//! mount namespace with a private directory bound over `/etc`, so the fixed paths
//! `/etc/qemu-ifup-rs.conf` and `/etc/qemu/bridge.conf` are the test's (the machine's `/etc` is
//! never written). Kernel state is read back with `ip -j -d link show`.
//!
//! Needs root (plain `cargo test` as root), a target directory not mounted nosuid, util-linux
//! (unshare, setpriv, mount) and libcap2-bin (setcap). Every refusal is checked for its exit
//! status, its one stderr line, and that every interface of the namespace is unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ifup_testkit::privileged::{
    install_copy, privileged_command, run_privileged, Caller, Install, PrivateEtc,
};
use ifup_testkit::{
    add_bridge, add_tap, add_tun, add_veth, expect_link, ip, links, set_master, set_up, Link,
    Netns, RunOutput,
};

const IFUP: &str = env!("CARGO_BIN_EXE_qemu-ifup");
const IFDOWN: &str = env!("CARGO_BIN_EXE_qemu-ifdown");

/// Unprivileged users and groups; numeric ids need no passwd entries.
const ALICE: u32 = 12345;
const BOB: u32 = 12346;
/// A group alice may be in (think `kvm`).
const KVM: u32 = 23456;
const OTHER_GROUP: u32 = 23457;

const NET_ADMIN: u64 = 1 << 12;

fn alice() -> Caller {
    Caller::new(ALICE, ALICE)
}

fn bob() -> Caller {
    Caller::new(BOB, BOB)
}

fn tmp() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// Which program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prog {
    Up,
    Down,
}

impl Prog {
    fn name(self) -> &'static str {
        match self {
            Prog::Up => "qemu-ifup",
            Prog::Down => "qemu-ifdown",
        }
    }

    fn copy(self, how: Install) -> PathBuf {
        let bin = match self {
            Prog::Up => IFUP,
            Prog::Down => IFDOWN,
        };
        install_copy(tmp(), Path::new(bin), how)
    }
}

const PRIVILEGED: [Install; 2] = [Install::SetuidRoot, Install::FileCaps];

/// One test's world: a network namespace with bridges `br0` (MTU 1400) and `br1` (MTU 1500),
/// and a private `/etc` holding the config `bridge br0` and the ACL `allow br0`, all root-owned.
struct World {
    etc: PrivateEtc,
    _ns: Netns,
}

impl World {
    fn new(test: &str) -> World {
        let ns = Netns::new();
        add_bridge("br0", Some(1400));
        add_bridge("br1", None);
        let etc = PrivateEtc::new(tmp(), test);
        etc.write("qemu-ifup-rs.conf", "# test config\nbridge br0\n")
            .write("qemu/bridge.conf", "# test ACL\nallow br0\n");
        World { etc, _ns: ns }
    }

    fn run<A: AsRef<OsStr>>(
        &self,
        prog: Prog,
        how: Install,
        caller: &Caller,
        args: &[A],
        env: &[(&str, &str)],
    ) -> RunOutput {
        run_privileged(&self.etc, caller, &prog.copy(how), args, env)
    }

    /// Runs `program ARGS` as alice in the world's private `/etc`.
    fn run_raw(&self, program: &Path, args: &[&str]) -> RunOutput {
        run_privileged(&self.etc, &alice(), program, args, &[])
    }

    fn ifup(&self, how: Install, caller: &Caller, tap: &str) -> RunOutput {
        self.run(Prog::Up, how, caller, &[tap], &[])
    }

    fn ifdown(&self, how: Install, caller: &Caller, tap: &str) -> RunOutput {
        self.run(Prog::Down, how, caller, &[tap], &[])
    }
}

/// Asserts a failure: exit status `code`, nothing on stdout, exactly one stderr line with the
/// program's prefix, printable, mentioning each of `words`.
#[track_caller]
fn assert_refused(out: &RunOutput, code: i32, prog: Prog, words: &[&str]) {
    assert_eq!(out.code, code, "exit status; output: {out:#?}");
    assert_eq!(out.stdout, "", "{out:#?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one stderr line expected: {out:#?}");
    assert!(out.stderr.ends_with('\n'), "{out:#?}");
    let line = lines[0];
    assert!(
        line.starts_with(&format!("{}: error: ", prog.name())),
        "prefix: {line:?}"
    );
    assert!(
        !line.chars().any(char::is_control),
        "control characters in {line:?}"
    );
    for w in words {
        assert!(line.contains(w), "{w:?} missing from {line:?}");
    }
}

#[track_caller]
fn assert_ok(out: &RunOutput) {
    assert_eq!(out.code, 0, "expected success: {out:#?}");
    // Nothing on stderr but the helper's own advice about the bridge (STP delay, br_netfilter),
    // which depends on the host, not on privileged mode.
    let unexpected: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| {
            !l.starts_with("qemu-ifup: warning: ") && !l.starts_with("qemu-ifdown: warning: ")
        })
        .collect();
    assert_eq!(unexpected, Vec::<&str>::new(), "{out:#?}");
}

#[track_caller]
fn assert_attached(tap: &str, bridge: &str, mtu: u32) -> Link {
    let l = expect_link(tap);
    assert_eq!(l.master.as_deref(), Some(bridge), "{l:#?}");
    assert_eq!(l.mtu, mtu, "{l:#?}");
    assert!(l.up, "{l:#?}");
    l
}

#[track_caller]
fn assert_detached(tap: &str) {
    let l = expect_link(tap);
    assert_eq!(l.master, None, "{l:#?}");
    assert!(!l.up, "{l:#?}");
}

/// Asserts that every interface of the namespace is as in `before`.
#[track_caller]
fn assert_unchanged(before: &[Link], what: &str) {
    assert_eq!(links(), before, "{what} changed an interface");
}

// ---------------------------------------------------------------------------------------------
// The caller's own tap.

#[test]
fn own_tap_is_attached_and_detached() {
    for how in PRIVILEGED {
        let w = World::new(&format!("own-tap-{how:?}"));
        add_tap("vmtap0", Some(ALICE), None);

        assert_ok(&w.ifup(how, &alice(), "vmtap0"));
        let l = assert_attached("vmtap0", "br0", 1400);
        assert!(l.address.unwrap().starts_with("fe:"), "{how:?}");
        // Idempotent.
        let before = links();
        assert_ok(&w.ifup(how, &alice(), "vmtap0"));
        assert_unchanged(&before, "a second qemu-ifup");

        assert_ok(&w.ifdown(how, &alice(), "vmtap0"));
        assert_detached("vmtap0");
        let before = links();
        assert_ok(&w.ifdown(how, &alice(), "vmtap0"));
        assert_unchanged(&before, "a second qemu-ifdown");
        // A tap that is gone is success for qemu-ifdown.
        assert_ok(&w.ifdown(how, &alice(), "vmtap9"));
    }
}

#[test]
fn tap_rule_and_options_apply_in_privileged_mode() {
    let w = World::new("tap-rule");
    w.etc.write(
        "qemu-ifup-rs.conf",
        "bridge br0\ntap vm-lab-* bridge br1 mtu 1450 hairpin on\n",
    );
    w.etc.write("qemu/bridge.conf", "allow br0\nallow br1\n");
    add_tap("vm-lab-1", Some(ALICE), None);
    assert_ok(&w.ifup(Install::SetuidRoot, &alice(), "vm-lab-1"));
    let l = assert_attached("vm-lab-1", "br1", 1450);
    assert!(l.bridge_port.unwrap().hairpin);
}

#[test]
fn without_config_the_default_route_bridge_must_be_allowed_too() {
    let w = World::new("default-route");
    w.etc.remove("qemu-ifup-rs.conf");
    ip(&["addr", "add", "10.0.2.1/24", "dev", "br1"]);
    ip(&["route", "add", "default", "dev", "br1"]);
    add_tap("vmtap0", Some(ALICE), None);
    let before = links();
    let out = w.ifup(Install::SetuidRoot, &alice(), "vmtap0");
    assert_refused(
        &out,
        1,
        Prog::Up,
        &["vmtap0", "br1", "does not allow bridge br1", "uid 12345"],
    );
    assert_unchanged(&before, "a refused qemu-ifup");

    w.etc.write("qemu/bridge.conf", "allow br1\n");
    assert_ok(&w.ifup(Install::SetuidRoot, &alice(), "vmtap0"));
    assert_attached("vmtap0", "br1", 1500);
}

// ---------------------------------------------------------------------------------------------
// Whose tap.

#[test]
fn another_users_tap_is_refused() {
    for how in PRIVILEGED {
        let w = World::new(&format!("other-user-{how:?}"));
        add_tap("vmtap0", Some(BOB), None);
        let before = links();
        let out = w.ifup(how, &alice(), "vmtap0");
        assert_refused(
            &out,
            1,
            Prog::Up,
            &["vmtap0", "br0", "denied", "not the caller's", "uid 12346"],
        );
        assert_unchanged(&before, "a refused qemu-ifup");
        let out = w.ifdown(how, &alice(), "vmtap0");
        assert_refused(&out, 1, Prog::Down, &["vmtap0", "not the caller's"]);
        assert_unchanged(&before, "a refused qemu-ifdown");
        // Bob may.
        assert_ok(&w.ifup(how, &bob(), "vmtap0"));
        assert_attached("vmtap0", "br0", 1400);
    }
}

#[test]
fn ownerless_tap_is_root_only() {
    let w = World::new("ownerless");
    add_tap("vmtap0", None, None);
    let before = links();
    for caller in [alice(), Caller::new(ALICE, 0).with_groups(&[0])] {
        let out = w.ifup(Install::SetuidRoot, &caller, "vmtap0");
        assert_refused(
            &out,
            1,
            Prog::Up,
            &["vmtap0", "no owner and no group", "root's only"],
        );
        assert_unchanged(&before, "a refused qemu-ifup");
    }
}

#[test]
fn group_tap_needs_the_group() {
    let w = World::new("group-tap");
    add_tap("vmtap0", None, Some(KVM));
    add_tap("vmtap1", None, Some(KVM));
    let before = links();
    for caller in [
        alice(),
        alice().with_groups(&[OTHER_GROUP, ALICE]),
        Caller::new(KVM, ALICE), // a uid equal to the gid is not the group
    ] {
        let out = w.ifup(Install::SetuidRoot, &caller, "vmtap0");
        assert_refused(
            &out,
            1,
            Prog::Up,
            &["vmtap0", "not the caller's", "group 23456"],
        );
        assert_unchanged(&before, "a refused qemu-ifup");
    }
    // Primary group.
    assert_ok(&w.ifup(Install::SetuidRoot, &Caller::new(ALICE, KVM), "vmtap0"));
    assert_attached("vmtap0", "br0", 1400);
    // Supplementary group, file capabilities this time.
    let caller = alice().with_groups(&[OTHER_GROUP, KVM]);
    assert_ok(&w.ifup(Install::FileCaps, &caller, "vmtap1"));
    assert_attached("vmtap1", "br0", 1400);
    assert_ok(&w.ifdown(Install::FileCaps, &caller, "vmtap1"));
    assert_detached("vmtap1");
}

#[test]
fn non_taps_are_refused() {
    let w = World::new("non-taps");
    w.etc.write("qemu/bridge.conf", "allow all\n");
    add_veth("veth0", "veth1");
    // A tun owned by the caller is still not a tap.
    ip(&[
        "tuntap",
        "add",
        "dev",
        "tun0",
        "mode",
        "tun",
        "user",
        &ALICE.to_string(),
    ]);
    add_tun("tun1");
    let before = links();
    for (name, what) in [
        ("veth0", "veth"),
        ("br1", "bridge"),
        ("br0", "bridge"),
        ("lo", "loopback"),
        ("tun0", "tun"),
        ("tun1", "tun"),
    ] {
        for how in PRIVILEGED {
            let out = w.ifup(how, &alice(), name);
            assert_refused(&out, 1, Prog::Up, &[name, what, "not a tap"]);
            let out = w.ifdown(how, &alice(), name);
            assert_refused(&out, 1, Prog::Down, &[name, what, "not a tap"]);
        }
    }
    assert_unchanged(&before, "refusing non-taps");
}

// ---------------------------------------------------------------------------------------------
// The ACL.

#[test]
fn bridge_not_in_acl_is_refused() {
    let w = World::new("not-in-acl");
    w.etc.write("qemu-ifup-rs.conf", "bridge br1\n");
    add_tap("vmtap0", Some(ALICE), None);
    let before = links();
    for how in PRIVILEGED {
        let out = w.ifup(how, &alice(), "vmtap0");
        assert_refused(
            &out,
            1,
            Prog::Up,
            &[
                "vmtap0",
                "br1",
                "/etc/qemu/bridge.conf does not allow bridge br1",
                "allow br1",
            ],
        );
        assert_unchanged(&before, "a refused qemu-ifup");
    }
}

#[test]
fn matching_deny_beats_allow() {
    let w = World::new("deny-wins");
    add_tap("vmtap0", Some(ALICE), None);
    let before = links();
    for (acl, line) in [
        ("allow br0\ndeny br0\n", 2),
        ("deny br0\nallow br0\n", 1),
        ("allow all\ndeny br0\n", 2),
        ("allow br0\ndeny all\n", 2),
        ("deny all\nallow all\n", 1),
    ] {
        w.etc.write("qemu/bridge.conf", acl);
        let out = w.ifup(Install::SetuidRoot, &alice(), "vmtap0");
        let at = format!("/etc/qemu/bridge.conf:{line}");
        assert_refused(&out, 1, Prog::Up, &["vmtap0", "br0", "denied", &at]);
        assert_unchanged(&before, acl);
    }
    // A deny of another bridge does not matter.
    w.etc.write("qemu/bridge.conf", "deny br1\nallow br0\n");
    assert_ok(&w.ifup(Install::SetuidRoot, &alice(), "vmtap0"));
}

#[test]
fn include_of_a_group_readable_file_grants_only_the_group() {
    let w = World::new("include");
    w.etc
        .write("qemu/bridge.conf", "include /etc/qemu/kvm.conf\n")
        .write_as("qemu/kvm.conf", "allow br0\n", 0, KVM, 0o640);
    add_tap("vmtap0", Some(ALICE), None);
    add_tap("vmtap1", Some(BOB), None);
    let before = links();
    // Bob is not in KVM: he could not read kvm.conf, so its allow does not count for him.
    for how in [Install::SetuidRoot, Install::FileCapsReadSearch] {
        for caller in [bob(), bob().with_groups(&[OTHER_GROUP])] {
            let out = w.ifup(how, &caller, "vmtap1");
            assert_refused(&out, 1, Prog::Up, &["vmtap1", "does not allow bridge br0"]);
        }
    }
    // With CAP_NET_ADMIN alone the helper reads the files with the caller's own permissions:
    // an include the caller cannot read makes the whole ACL unusable for them (fail closed).
    let out = w.ifup(Install::FileCaps, &bob(), "vmtap1");
    assert_refused(
        &out,
        1,
        Prog::Up,
        &[
            "vmtap1",
            "denied",
            "/etc/qemu/kvm.conf",
            "Permission denied",
        ],
    );
    assert_unchanged(&before, "a refused qemu-ifup");
    // Alice is in KVM.
    for how in [Install::SetuidRoot, Install::FileCaps] {
        assert_ok(&w.ifup(how, &alice().with_groups(&[KVM]), "vmtap0"));
        assert_attached("vmtap0", "br0", 1400);
        assert_ok(&w.ifdown(how, &alice().with_groups(&[KVM]), "vmtap0"));
        assert_detached("vmtap0");
    }

    // Denies count for everyone, readable or not.
    let before = links();
    w.etc
        .write("qemu/bridge.conf", "allow all\ninclude deny.conf\n")
        .write_as("qemu/deny.conf", "deny br0\n", 0, 0, 0o600);
    for how in [Install::SetuidRoot, Install::FileCapsReadSearch] {
        let out = w.ifup(how, &bob(), "vmtap1");
        assert_refused(
            &out,
            1,
            Prog::Up,
            &["vmtap1", "denied", "/etc/qemu/deny.conf:1"],
        );
    }
    let out = w.ifup(Install::FileCaps, &bob(), "vmtap1");
    assert_refused(
        &out,
        1,
        Prog::Up,
        &[
            "vmtap1",
            "denied",
            "/etc/qemu/deny.conf",
            "Permission denied",
        ],
    );
    assert_unchanged(&before, "a refused qemu-ifup");
}

#[test]
fn missing_or_broken_acl_refuses() {
    let w = World::new("missing-acl");
    add_tap("vmtap0", Some(ALICE), None);
    let before = links();
    w.etc.remove("qemu/bridge.conf");
    let out = w.ifup(Install::SetuidRoot, &alice(), "vmtap0");
    assert_refused(
        &out,
        1,
        Prog::Up,
        &["vmtap0", "br0", "/etc/qemu/bridge.conf does not exist"],
    );
    assert_unchanged(&before, "a refused qemu-ifup");
    for (text, why) in [
        ("allow br0\nallow\n", "needs"),
        ("allow br0\nallow a23456789012345b\n", "16 bytes"),
        ("allow br0\ninclude missing.conf\n", "does not exist"),
        ("allow br0\ninclude bridge.conf\n", "loop"),
        ("allow br0\npermit br0\n", "unknown keyword"),
    ] {
        w.etc.write("qemu/bridge.conf", text);
        let out = w.ifup(Install::SetuidRoot, &alice(), "vmtap0");
        assert_refused(&out, 1, Prog::Up, &["vmtap0", "br0", "denied", why]);
        assert_unchanged(&before, text);
    }
}

#[test]
fn a_broken_include_the_caller_cannot_read_is_not_quoted() {
    let w = World::new("secret-include");
    w.etc
        .write("qemu/bridge.conf", "allow br0\ninclude secret.conf\n")
        .write_as(
            "qemu/secret.conf",
            "allow br0\nsecret-word-xyzzy\n",
            0,
            0,
            0o600,
        );
    add_tap("vmtap0", Some(ALICE), None);
    let before = links();
    let out = w.ifup(Install::SetuidRoot, &alice(), "vmtap0");
    assert_refused(
        &out,
        1,
        Prog::Up,
        &[
            "vmtap0",
            "denied",
            "/etc/qemu/secret.conf:2",
            "invalid line",
        ],
    );
    assert!(!out.stderr.contains("xyzzy"), "{out:#?}");
    assert_unchanged(&before, "a refused qemu-ifup");
}

#[test]
fn changes_and_denials_are_logged_to_syslog_with_the_real_uid() {
    let w = World::new("syslog");
    let log = w.etc.syslog();
    add_tap("vmtap0", Some(ALICE), None);
    add_tap("vmtap1", Some(BOB), None);
    // A change: daemon.info (<30>), the caller's uid, tap and bridge.
    assert_ok(&w.ifup(Install::SetuidRoot, &alice(), "vmtap0"));
    let msgs = log.take();
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    let m = &msgs[0];
    assert!(m.starts_with("<30>qemu-ifup["), "{m}");
    for word in [&format!("uid={ALICE} ")[..], "vmtap0", "br0"] {
        assert!(m.contains(word), "{word:?} missing from {m}");
    }
    // A denial: authpriv.warning (<84>), with the real uid and the reason.
    let out = w.ifup(Install::SetuidRoot, &alice(), "vmtap1");
    assert_eq!(out.code, 1, "{out:#?}");
    let msgs = log.take();
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    let m = &msgs[0];
    assert!(m.starts_with("<84>qemu-ifup["), "{m}");
    for word in [&format!("uid={ALICE} ")[..], "denied", "vmtap1"] {
        assert!(m.contains(word), "{word:?} missing from {m}");
    }
    // qemu-ifdown's change.
    assert_ok(&w.ifdown(Install::SetuidRoot, &alice(), "vmtap0"));
    let msgs = log.take();
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert!(msgs[0].starts_with("<30>qemu-ifdown["), "{}", msgs[0]);
    assert!(
        msgs[0].contains("vmtap0") && msgs[0].contains("detach from br0"),
        "{}",
        msgs[0]
    );
    // Nothing to do: nothing logged.
    assert_ok(&w.ifdown(Install::SetuidRoot, &alice(), "vmtap0"));
    assert_eq!(log.take(), Vec::<String>::new());
    // A failure run by root (no privileged mode): daemon.err (<27>) with uid 0.
    let out = w.run(
        Prog::Up,
        Install::Plain,
        &Caller::new(0, 0),
        &["vmtap9"],
        &[],
    );
    assert_eq!(out.code, 1, "{out:#?}");
    let msgs = log.take();
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert!(msgs[0].starts_with("<27>qemu-ifup["), "{}", msgs[0]);
    assert!(msgs[0].contains("uid=0 failed: tap vmtap9"), "{}", msgs[0]);
}

// ---------------------------------------------------------------------------------------------
// Who may write the files.

#[test]
fn files_others_could_change_are_not_trusted() {
    let w = World::new("untrusted");
    add_tap("vmtap0", Some(ALICE), None);
    let before = links();
    let config = "bridge br0\n";
    let acl = "allow br0\n";
    let reset = |w: &World| {
        w.etc
            .set_meta("", 0, 0, 0o755)
            .set_meta("qemu", 0, 0, 0o755)
            .write("qemu-ifup-rs.conf", config)
            .write("qemu/bridge.conf", acl)
            .remove("qemu/real.conf")
            .remove("qemu/inc.conf");
    };
    type Spoil = fn(&PrivateEtc);
    let cases: [(&str, Spoil, &[&str]); 11] = [
        (
            "group-writable config",
            |e| {
                e.set_meta("qemu-ifup-rs.conf", 0, 0, 0o664);
            },
            &["/etc/qemu-ifup-rs.conf", "writable by group or others"],
        ),
        (
            "world-writable config",
            |e| {
                e.set_meta("qemu-ifup-rs.conf", 0, 0, 0o646);
            },
            &["/etc/qemu-ifup-rs.conf", "writable by group or others"],
        ),
        (
            "config owned by the caller",
            |e| {
                e.set_meta("qemu-ifup-rs.conf", ALICE, 0, 0o644);
            },
            &["/etc/qemu-ifup-rs.conf", "owned by uid 12345"],
        ),
        (
            "symlinked config",
            |e| {
                e.write("qemu/real.conf", "bridge br0\n")
                    .symlink("qemu-ifup-rs.conf", "qemu/real.conf");
            },
            &["/etc/qemu-ifup-rs.conf", "symbolic link"],
        ),
        (
            "group-writable ACL",
            |e| {
                e.set_meta("qemu/bridge.conf", 0, 0, 0o664);
            },
            &["/etc/qemu/bridge.conf", "writable by group or others"],
        ),
        (
            "world-writable ACL",
            |e| {
                e.set_meta("qemu/bridge.conf", 0, 0, 0o646);
            },
            &["/etc/qemu/bridge.conf", "writable by group or others"],
        ),
        (
            "ACL owned by the caller",
            |e| {
                e.set_meta("qemu/bridge.conf", ALICE, ALICE, 0o644);
            },
            &["/etc/qemu/bridge.conf", "owned by uid 12345"],
        ),
        (
            "symlinked ACL",
            |e| {
                e.write("qemu/real.conf", "allow br0\n")
                    .symlink("qemu/bridge.conf", "real.conf");
            },
            &["/etc/qemu/bridge.conf", "symbolic link"],
        ),
        (
            "group-writable ACL directory",
            |e| {
                e.set_meta("qemu", 0, KVM, 0o775);
            },
            &["/etc/qemu", "directory", "writable by group or others"],
        ),
        (
            "ACL directory owned by the caller",
            |e| {
                e.set_meta("qemu", ALICE, 0, 0o755);
            },
            &["/etc/qemu", "directory", "owned by uid 12345"],
        ),
        (
            "world-writable included file",
            |e| {
                e.write("qemu/bridge.conf", "include inc.conf\n").write_as(
                    "qemu/inc.conf",
                    "allow br0\n",
                    0,
                    0,
                    0o666,
                );
            },
            &["/etc/qemu/inc.conf", "writable by group or others"],
        ),
    ];
    // The trusted setup works.
    reset(&w);
    assert_ok(&w.run(
        Prog::Up,
        Install::SetuidRoot,
        &alice(),
        &["--dry-run", "vmtap0"],
        &[],
    ));
    for (what, spoil, words) in cases {
        reset(&w);
        spoil(&w.etc);
        for how in PRIVILEGED {
            let out = w.ifup(how, &alice(), "vmtap0");
            // A symlink too is a trust problem (exit 1), not an unreadable file.
            let mut expect = vec!["not trusted"];
            expect.extend_from_slice(words);
            assert_eq!(out.code, 1, "{what} ({how:?}): {out:#?}");
            assert_refused(&out, 1, Prog::Up, &expect);
            assert_unchanged(&before, what);
        }
    }
    // qemu-ifdown reads the ACL too (it checks the tap's bridge).
    reset(&w);
    assert_ok(&w.ifup(Install::SetuidRoot, &alice(), "vmtap0"));
    let before = links();
    w.etc.set_meta("qemu/bridge.conf", 0, 0, 0o666);
    let out = w.ifdown(Install::SetuidRoot, &alice(), "vmtap0");
    assert_refused(
        &out,
        1,
        Prog::Down,
        &["vmtap0", "br0", "denied", "writable by group or others"],
    );
    assert_unchanged(&before, "a refused qemu-ifdown");
}

// ---------------------------------------------------------------------------------------------
// Arguments and environment.

#[test]
fn config_override_is_refused() {
    let w = World::new("config-override");
    add_tap("vmtap0", Some(ALICE), None);
    // A config the caller would like: their tap on br1.
    let evil = tmp().join("privileged-evil.conf");
    std::fs::write(&evil, "bridge br1\n").unwrap();
    let evil = evil.to_str().unwrap().to_owned();
    let before = links();
    for how in PRIVILEGED {
        for prog in [Prog::Up, Prog::Down] {
            let eq = format!("--config={evil}");
            for args in [
                vec!["--config", evil.as_str(), "vmtap0"],
                vec!["-c", evil.as_str(), "vmtap0"],
                vec![eq.as_str(), "vmtap0"],
                vec!["--dry-run", "--config", evil.as_str(), "vmtap0"],
            ] {
                let out = w.run(prog, how, &alice(), &args, &[]);
                let words: &[&str] = match prog {
                    Prog::Up => &["--config", "not accepted", "uid 12345"],
                    // qemu-ifdown reads no config, in any mode.
                    Prog::Down => &["--config", "reads no config"],
                };
                assert_refused(&out, 2, prog, words);
            }
            let out = w.run(
                prog,
                how,
                &alice(),
                &["vmtap0"],
                &[("QEMU_IFUP_CONFIG", &evil)],
            );
            assert_refused(&out, 2, prog, &["QEMU_IFUP_CONFIG", "not accepted"]);
        }
    }
    assert_unchanged(&before, "a refused override");
}

#[test]
fn hostile_tap_names_are_usage_errors() {
    let w = World::new("hostile-names");
    let long = "x".repeat(100_000);
    let mut names: Vec<Vec<u8>> = [
        "",
        "a23456789012345b",
        "a/b",
        "../../etc",
        "a b",
        "a\tb",
        "a\nb",
        "vmtap0\n",
        "a\u{7}b",
        "\u{1b}[2J",
        "a\u{85}b",
        ".",
        "..",
        "-x",
        "-",
        long.as_str(),
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    names.push(b"vm\xfftap".to_vec());
    names.push(b"\xc3".to_vec());
    let before = links();
    for name in &names {
        let arg = OsStr::from_bytes(name);
        for how in PRIVILEGED {
            for prog in [Prog::Up, Prog::Down] {
                let out = w.run(prog, how, &alice(), &[arg], &[]);
                // `-x` reads as an option, which is just as much a usage error.
                let why = if name.len() > 1 && name[0] == b'-' {
                    "unknown option"
                } else {
                    "invalid interface name"
                };
                assert_refused(&out, 2, prog, &[why]);
                assert!(
                    out.stderr.len() < 300,
                    "a long name must not make a long message: {} bytes",
                    out.stderr.len()
                );
            }
        }
    }
    // Also after `--`-like tricks: an option-looking TAP is never a path or an option.
    let out = w.run(
        Prog::Up,
        Install::SetuidRoot,
        &alice(),
        &["--", "vmtap0"],
        &[],
    );
    assert_eq!(out.code, 2, "{out:#?}");
    assert_unchanged(&before, "refusing hostile names");
}

#[test]
fn hostile_environment_is_not_used() {
    let w = World::new("hostile-env");
    add_tap("vmtap0", Some(ALICE), None);
    let env = [
        ("LD_PRELOAD", "/nonexistent/evil.so"),
        ("LD_LIBRARY_PATH", "/tmp"),
        ("GLIBC_TUNABLES", "glibc.malloc.check=3"),
        ("MALLOC_CHECK_", "3"),
        ("RUST_BACKTRACE", "full"),
        ("RUST_LOG", "trace"),
        ("IFS", "x"),
        ("TMPDIR", "/nonexistent"),
        ("", "X=1"),
    ];
    for how in PRIVILEGED {
        assert_ok(&w.run(Prog::Up, how, &alice(), &["vmtap0"], &env));
        assert_attached("vmtap0", "br0", 1400);
        assert_ok(&w.run(Prog::Down, how, &alice(), &["vmtap0"], &env));
        assert_detached("vmtap0");
    }
}

// ---------------------------------------------------------------------------------------------
// Bridges the tap is already on.

#[test]
fn tap_on_another_bridge_is_not_moved() {
    let w = World::new("no-moving");
    w.etc.write("qemu/bridge.conf", "allow all\n");
    add_tap("vmtap0", Some(ALICE), None);
    set_master("vmtap0", "br1");
    let before = links();
    for how in PRIVILEGED {
        let out = w.ifup(how, &alice(), "vmtap0");
        assert_refused(
            &out,
            1,
            Prog::Up,
            &["vmtap0", "br0", "already attached to br1", "not allowed"],
        );
        assert_unchanged(&before, "a refused move");
    }
    assert_eq!(expect_link("vmtap0").master.as_deref(), Some("br1"));
}

#[test]
fn ifdown_of_another_users_tap_is_refused() {
    let w = World::new("ifdown-other");
    add_tap("vmtap0", Some(BOB), None);
    set_master("vmtap0", "br0");
    set_up("vmtap0");
    let before = links();
    for how in PRIVILEGED {
        for caller in [alice(), alice().with_groups(&[KVM, BOB])] {
            let out = w.ifdown(how, &caller, "vmtap0");
            assert_refused(
                &out,
                1,
                Prog::Down,
                &["vmtap0", "br0", "not the caller's", "uid 12346"],
            );
            assert_unchanged(&before, "a refused qemu-ifdown");
        }
    }
    let l = expect_link("vmtap0");
    assert_eq!(l.master.as_deref(), Some("br0"));
    assert!(l.up);
}

#[test]
fn ifdown_only_from_a_bridge_the_acl_allows() {
    let w = World::new("ifdown-acl");
    add_tap("vmtap0", Some(ALICE), None);
    set_master("vmtap0", "br1");
    set_up("vmtap0");
    let before = links();
    let out = w.ifdown(Install::SetuidRoot, &alice(), "vmtap0");
    assert_refused(
        &out,
        1,
        Prog::Down,
        &["vmtap0", "br1", "does not allow bridge br1"],
    );
    assert_unchanged(&before, "a refused qemu-ifdown");

    w.etc.write("qemu/bridge.conf", "allow br1\n");
    assert_ok(&w.ifdown(Install::FileCaps, &alice(), "vmtap0"));
    assert_detached("vmtap0");
}

// ---------------------------------------------------------------------------------------------
// The process itself.

/// The `privileges:` line of a privileged `--dry-run`, as key → value.
fn privileges(out: &RunOutput) -> std::collections::HashMap<String, String> {
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("privileges: "))
        .unwrap_or_else(|| panic!("no privileges line: {out:#?}"));
    line.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("{line}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn mask(v: &str) -> u64 {
    u64::from_str_radix(v, 16).unwrap()
}

fn test_process_bounding_set() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let v = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap();
    mask(v.trim())
}

#[test]
fn only_cap_net_admin_and_the_callers_ids_while_running() {
    let w = World::new("privileges");
    add_tap("vmtap0", None, Some(KVM));
    let caller = Caller::new(ALICE, BOB).with_groups(&[OTHER_GROUP, KVM]);
    for how in [
        Install::SetuidRoot,
        Install::FileCaps,
        Install::FileCapsReadSearch,
    ] {
        for prog in [Prog::Up, Prog::Down] {
            if prog == Prog::Down {
                set_master("vmtap0", "br0");
            }
            let before = links();
            let out = w.run(prog, how, &caller, &["--dry-run", "vmtap0"], &[]);
            assert_ok(&out);
            assert_unchanged(&before, "--dry-run");
            if prog == Prog::Down {
                assert!(out.stdout.contains("detach from br0"), "{out:#?}");
                ip(&["link", "set", "vmtap0", "nomaster"]);
                // qemu-ifdown prints no privileges line; qemu-ifup's covers the shared code.
                continue;
            }
            assert!(out.stdout.contains("attach to bridge br0"), "{out:#?}");
            let p = privileges(&out);
            assert_eq!(p["uid"], format!("{ALICE}/{ALICE}/{ALICE}"), "{how:?}");
            assert_eq!(p["gid"], format!("{BOB}/{BOB}/{BOB}"), "{how:?}");
            assert_eq!(mask(&p["cap_eff"]), NET_ADMIN, "{how:?}");
            assert_eq!(mask(&p["cap_prm"]), NET_ADMIN, "{how:?}");
            assert_eq!(mask(&p["cap_inh"]), 0, "{how:?}");
            assert_eq!(mask(&p["cap_amb"]), 0, "{how:?}");
            let bnd = match how {
                Install::SetuidRoot => NET_ADMIN,
                // No CAP_SETPCAP to shrink it; no-new-privs makes it moot.
                _ => test_process_bounding_set(),
            };
            assert_eq!(mask(&p["cap_bnd"]), bnd, "{how:?}");
            assert_eq!(p["no_new_privs"], "1", "{how:?}");
        }
    }
}

#[test]
fn without_privilege_the_error_says_how_to_fix_it() {
    let w = World::new("no-privilege");
    add_tap("vmtap0", Some(ALICE), None);
    for prog in [Prog::Up, Prog::Down] {
        if prog == Prog::Down {
            set_master("vmtap0", "br0");
        }
        let before = links();
        let out = w.run(prog, Install::Plain, &alice(), &["vmtap0"], &[]);
        assert_refused(
            &out,
            1,
            prog,
            &[
                "vmtap0",
                "CAP_NET_ADMIN",
                "setcap cap_net_admin+ep",
                "setuid",
            ],
        );
        assert_unchanged(&before, "an unprivileged run");
    }
}

#[test]
fn kernel_names_with_control_characters_are_escaped() {
    // Interface names may hold control characters (the kernel refuses only '/', ':' and
    // whitespace); whoever named a bridge so must not reach the caller's terminal or syslog raw.
    let w = World::new("control-chars");
    w.etc.remove("qemu-ifup-rs.conf");
    w.etc.write("qemu/bridge.conf", "allow all\n");
    let evil = "br\u{1b}[2J\u{7}";
    add_bridge(evil, None);
    ip(&["addr", "add", "10.0.2.1/24", "dev", evil]);
    ip(&["route", "add", "default", "dev", evil]);
    add_tap("vmtap0", Some(ALICE), None);
    add_tap("vmtap1", Some(ALICE), None);
    set_master("vmtap1", evil);
    // `ip -j` prints such names raw, which is not JSON: compare the one-line listing (flags,
    // MTU, master, address) instead, without the carrier, which the kernel updates lazily.
    let listing = || {
        ip(&["-o", "link", "show"])
            .split_whitespace()
            .filter(|w| !matches!(*w, "UP" | "DOWN" | "UNKNOWN" | "LOWERLAYERDOWN"))
            .map(|w| w.replace("NO-CARRIER,", "").replace(",LOWER_UP", ""))
            .collect::<Vec<_>>()
    };
    let before = listing();
    let out = w.ifup(Install::SetuidRoot, &alice(), "vmtap0");
    assert_refused(&out, 1, Prog::Up, &["vmtap0", r"br\u{1b}[2J\u{7}"]);
    let out = w.ifdown(Install::SetuidRoot, &alice(), "vmtap1");
    assert_refused(&out, 1, Prog::Down, &["vmtap1", r"br\u{1b}[2J\u{7}"]);
    assert_eq!(listing(), before, "a refusal changed an interface");
}

/// Caught while it runs (blocked writing its `--dry-run` plan to a full pipe, after the drop),
/// the helper is seen from outside as the kernel sees it: the caller's uid and gid, CAP_NET_ADMIN
/// alone, no-new-privs, and not dumpable, so the caller can neither ptrace it nor read its
/// memory or environment.
#[test]
fn the_running_helper_is_not_the_callers_to_inspect() {
    use std::io::Write;
    use std::os::fd::AsFd;

    use nix::fcntl::{fcntl, FcntlArg, OFlag};

    let w = World::new("running");
    add_tap("vmtap0", Some(ALICE), None);
    // The plan, and --help (printed only after the drop too, so a blocked stdout never holds a
    // privileged process).
    let cases = PRIVILEGED
        .into_iter()
        .flat_map(|how| [(how, &["--dry-run", "vmtap0"][..]), (how, &["--help"][..])]);
    for (how, args) in cases {
        let copy = Prog::Up.copy(how);
        // A pipe nobody reads, filled up: the first line of output blocks the helper.
        let (reader, mut writer) = std::io::pipe().unwrap();
        fcntl(writer.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        while writer.write(&[b'x'; 4096]).is_ok() {}
        fcntl(writer.as_fd(), FcntlArg::F_SETFL(OFlag::empty())).unwrap();
        let argv: Vec<&OsStr> = std::iter::once(copy.as_os_str())
            .chain(args.iter().map(OsStr::new))
            .collect();
        let (mut cmd, _) = privileged_command(w.etc.path(), &alice(), &[], &argv);
        let mut child = cmd
            .stdout(writer)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let status = ifup_testkit::wait_until(
            std::time::Duration::from_secs(20),
            "the helper to block on its stdout",
            || {
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let sleeping = status.lines().any(|l| l.starts_with("State:\tS"));
                let dropped = status.contains(&format!("Uid:\t{ALICE}\t{ALICE}\t{ALICE}"));
                (exe == copy && sleeping && dropped).then_some(status)
            },
        );
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} missing: {status}"))
                .trim()
                .to_owned()
        };
        assert_eq!(field("Gid:"), format!("{ALICE}\t{ALICE}\t{ALICE}\t{ALICE}"));
        // Blocked on output: every capability is gone, and so is the netlink socket.
        assert_eq!(mask(&field("CapEff:")), 0, "{how:?}");
        assert_eq!(mask(&field("CapPrm:")), 0, "{how:?}");
        let netlink = std::fs::read_to_string(format!("/proc/{pid}/net/netlink")).unwrap();
        let netlink_inodes: Vec<&str> = netlink
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().last())
            .collect();
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
            let target = std::fs::read_link(fd.unwrap().path()).unwrap();
            let target = target.to_string_lossy();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
            {
                assert!(
                    !netlink_inodes.contains(&inode),
                    "{how:?}: a netlink socket is still open while output blocks"
                );
            }
        }
        assert_eq!(mask(&field("CapInh:")), 0, "{how:?}");
        assert_eq!(mask(&field("CapAmb:")), 0, "{how:?}");
        assert_eq!(field("NoNewPrivs:"), "1", "{how:?}");
        // The caller (same uid) may not look inside, though it may look into its own processes.
        let own = w.run_raw(Path::new("/bin/cat"), &["/proc/self/maps"]);
        assert_eq!(own.code, 0, "{own:#?}");
        for what in ["environ", "mem", "maps"] {
            let out = run_privileged(
                &w.etc,
                &alice(),
                Path::new("/bin/cat"),
                &[format!("/proc/{pid}/{what}")],
                &[],
            );
            assert_ne!(out.code, 0, "{how:?}: the caller read /proc/{pid}/{what}");
            assert!(
                out.stderr.contains("Permission denied"),
                "{how:?}: {what}: {out:#?}"
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
        drop(reader);
    }
}

/// Closed standard descriptors do not make the helper write its messages into a file or socket
/// it opened (std reopens 0, 1, 2 on /dev/null before main).
#[test]
fn closed_standard_descriptors_are_harmless() {
    let w = World::new("closed-fds");
    add_tap("vmtap0", Some(BOB), None);
    add_tap("vmtap1", Some(ALICE), None);
    let before = links();
    let closed = |prog: Prog, tap: &str| {
        let script = r#"exec <&- >&- 2>&- "$0" "$@""#;
        let copy = prog.copy(Install::SetuidRoot);
        let args = ["-c", script, copy.to_str().unwrap(), tap];
        w.run_raw(Path::new("/bin/sh"), &args)
    };
    let out = closed(Prog::Up, "vmtap0");
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (1, "", "")
    );
    assert_unchanged(&before, "a refused qemu-ifup with closed descriptors");
    let out = closed(Prog::Up, "vmtap1");
    assert_eq!(out.code, 0, "{out:#?}");
    assert_attached("vmtap1", "br0", 1400);
}

// ---------------------------------------------------------------------------------------------
// The hostile review's findings: each test failed on the code before the fix.

/// `target/<profile>/examples/open_tap`, next to `target/<profile>/deps/<this test>`, copied
/// where the test users can run it.
fn open_tap_probe() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("examples").join("open_tap"))
        .unwrap();
    assert!(
        path.is_file(),
        "{} is missing: build the examples (`cargo test` does, or `cargo build --examples`)",
        path.display()
    );
    install_copy(tmp(), &path, Install::Plain)
}

/// Finding 1: a tap is the caller's only as the kernel decides who may open it — owner **and**
/// group (as in every kernel but 6.13), and one of them set. For every owner/group pair against
/// three callers, what the kernel lets the caller do (`TUNSETIFF` as that user) is compared with
/// what the setuid helper does for them: the helper never acts where the kernel would refuse,
/// and acts wherever the kernel allows, except on a tap nobody claimed.
#[test]
fn a_tap_is_the_callers_exactly_when_the_kernel_lets_the_caller_open_it() {
    const U1: u32 = 30001;
    const U2: u32 = 30002;
    const U3: u32 = 30003;
    let w = World::new("kernel-ownership");
    w.etc.write("qemu/bridge.conf", "allow all\n");
    let probe = open_tap_probe();
    // u1 and u2 are both in kvm; u3 is not.
    let callers = [
        ("u1", Caller::new(U1, U1).with_groups(&[KVM])),
        ("u2", Caller::new(U2, U2).with_groups(&[KVM])),
        ("u3", Caller::new(U3, U3)),
    ];
    let owners = [None, Some(U1), Some(U3)];
    let groups = [None, Some(KVM), Some(U3)];
    let mut n = 0;
    for owner in owners {
        for group in groups {
            for (who, caller) in &callers {
                n += 1;
                let tap = format!("t{n}");
                add_tap(&tap, owner, group);
                let kernel = run_privileged(&w.etc, caller, &probe, &[&tap], &[]);
                let kernel_opens = match kernel.code {
                    0 => true,
                    1 => {
                        assert!(
                            kernel.stdout.contains("Operation not permitted"),
                            "{kernel:#?}"
                        );
                        false
                    }
                    _ => panic!("{kernel:#?}"),
                };
                let claimed = owner.is_some() || group.is_some();
                let case = format!("tap user {owner:?} group {group:?}, caller {who}");
                for how in PRIVILEGED {
                    let before = links();
                    let out = w.ifup(how, caller, &tap);
                    if kernel_opens && claimed {
                        assert_ok(&out);
                        assert_attached(&tap, "br0", 1400);
                        assert_ok(&w.ifdown(how, caller, &tap));
                        assert_detached(&tap);
                    } else {
                        assert_refused(&out, 1, Prog::Up, &[&tap, "not the caller's"]);
                        assert_unchanged(&before, &case);
                        // On the bridge (root put it there), it stays there.
                        set_master(&tap, "br0");
                        set_up(&tap);
                        let before = links();
                        let out = w.ifdown(how, caller, &tap);
                        assert_refused(&out, 1, Prog::Down, &[&tap, "not the caller's"]);
                        assert_unchanged(&before, &case);
                        ip(&["link", "set", &tap, "nomaster", "down"]);
                    }
                }
                // The cases the review found: u2 in kvm may not touch u1's tap in kvm, and u3
                // may not use its own tap in a group it is not in.
                if (owner, group, *who) == (Some(U1), Some(KVM), "u2")
                    || (owner, group, *who) == (Some(U3), Some(KVM), "u3")
                {
                    assert!(!kernel_opens, "{case}: the kernel let the caller open it");
                }
                ip(&["link", "del", &tap]);
            }
        }
    }
}

/// Finding 1, as the review found it: u2 (in kvm) downs u1's running VM's tap (`user u1 group
/// kvm`); u1 moves a tap `user u2 group kvm` onto a bridge the ACL allows only to u1.
#[test]
fn a_shared_group_does_not_make_another_users_tap_yours() {
    const U1: u32 = 30011;
    const U2: u32 = 30012;
    let w = World::new("shared-group");
    w.etc.write("qemu/bridge.conf", "allow br0\n");
    let u1 = Caller::new(U1, U1).with_groups(&[KVM]);
    let u2 = Caller::new(U2, U2).with_groups(&[KVM]);
    add_tap("vm-u1", Some(U1), Some(KVM));
    assert_ok(&w.ifup(Install::SetuidRoot, &u1, "vm-u1"));
    assert_attached("vm-u1", "br0", 1400);
    add_tap("vm-u2", Some(U2), Some(KVM));
    let before = links();
    for how in PRIVILEGED {
        let out = w.ifdown(how, &u2, "vm-u1");
        assert_refused(&out, 1, Prog::Down, &["vm-u1", "it belongs to uid 30011"]);
        let out = w.ifup(how, &u1, "vm-u2");
        assert_refused(&out, 1, Prog::Up, &["vm-u2", "it belongs to uid 30012"]);
        assert_unchanged(&before, "a refusal");
    }
}

/// Finding 2: the rule is chosen by the kernel's name of the tap, not by an alternative name
/// the caller passes.
#[test]
fn the_rule_follows_the_kernels_name_not_an_altname() {
    let w = World::new("altname");
    w.etc
        .write(
            "qemu-ifup-rs.conf",
            "bridge br1\ntap vm-dmz-* bridge br0 isolated on learning off\n",
        )
        .write("qemu/bridge.conf", "allow all\n");
    add_tap("vm-dmz-a", Some(ALICE), None);
    ip(&[
        "link", "property", "add", "dev", "vm-dmz-a", "altname", "u1-dmz",
    ]);
    let log = w.etc.syslog();
    let out = w.ifup(Install::SetuidRoot, &alice(), "u1-dmz");
    assert_ok(&out);
    assert_attached("vm-dmz-a", "br0", 1400);
    let port = expect_link("vm-dmz-a").bridge_port.unwrap();
    assert!(port.isolated && !port.learning, "{port:?}");
    // Logged by the kernel's name.
    let msgs = log.take();
    assert!(
        msgs.iter()
            .any(|m| m.contains("tap vm-dmz-a -> bridge br0")),
        "{msgs:#?}"
    );
    assert!(msgs.iter().all(|m| !m.contains("u1-dmz")), "{msgs:#?}");
    // And the dry run says which tap it is.
    let out = w.run(
        Prog::Up,
        Install::FileCaps,
        &alice(),
        &["--dry-run", "u1-dmz"],
        &[],
    );
    assert_ok(&out);
    assert!(out.stdout.starts_with("tap vm-dmz-a "), "{out:#?}");
}

/// Finding 3: an error in a config file the caller cannot read, or in a file it includes, is
/// not quoted back to the caller (the location is, for the admin).
#[test]
fn config_errors_in_files_the_caller_cannot_read_are_not_quoted() {
    let w = World::new("config-secrets");
    add_tap("vmtap0", Some(ALICE), None);
    // The config itself, mode 0600.
    w.etc
        .write("qemu-ifup-rs.conf", "bridge br0 s3cr3t-token on\n")
        .set_meta("qemu-ifup-rs.conf", 0, 0, 0o600);
    for how in PRIVILEGED {
        let out = w.ifup(how, &alice(), "vmtap0");
        // Setuid root reads the file and does not quote it; file capabilities alone read with
        // the caller's rights, which cannot read it at all.
        let words: &[&str] = match how {
            Install::SetuidRoot => &["/etc/qemu-ifup-rs.conf:1: invalid line"],
            _ => &["cannot read /etc/qemu-ifup-rs.conf: Permission denied"],
        };
        assert_refused(&out, 2, Prog::Up, words);
        assert!(!out.stderr.contains("s3cr3t"), "{out:#?}");
    }
    // A root-only file it includes (think /etc/shadow).
    w.etc
        .write("qemu-ifup-rs.conf", "bridge br0\ninclude /etc/xshadow\n")
        .set_meta("qemu-ifup-rs.conf", 0, 0, 0o644)
        .write("xshadow", "root:$y$j9T$s3cr3t:19000:0:99999:7:::\n")
        .set_meta("xshadow", 0, 42, 0o640);
    for how in PRIVILEGED {
        let out = w.ifup(how, &alice(), "vmtap0");
        // With file capabilities alone the caller's rights read the files: the include is
        // unreadable, said at the include line of the readable config.
        let words: &[&str] = match how {
            Install::SetuidRoot => &["/etc/xshadow:1: invalid line"],
            _ => &[
                "/etc/qemu-ifup-rs.conf:2",
                "cannot read included file /etc/xshadow",
            ],
        };
        assert_refused(&out, 2, Prog::Up, words);
        assert!(
            !out.stderr.contains("s3cr3t") && !out.stderr.contains("root:"),
            "{out:#?}"
        );
    }
    // A caller who can read the file gets the whole message (the admin's own errors).
    w.etc
        .write("qemu-ifup-rs.conf", "bridge br0 mtu 12\n")
        .set_meta("qemu-ifup-rs.conf", 0, 0, 0o644);
    let out = w.ifup(Install::SetuidRoot, &alice(), "vmtap0");
    assert_refused(
        &out,
        2,
        Prog::Up,
        &["/etc/qemu-ifup-rs.conf:1", "bad value \"12\""],
    );
}

/// Finding 5: a failed write is an error (exit 1, one line on stderr), never a panic.
#[test]
fn failed_writes_exit_1_without_a_panic() {
    let w = World::new("write-errors");
    add_tap("vmtap0", Some(ALICE), None);
    set_master("vmtap0", "br0");
    for how in PRIVILEGED {
        for (prog, args) in [
            (Prog::Up, &["--help"][..]),
            (Prog::Up, &["--version"]),
            (Prog::Up, &["--dry-run", "vmtap0"]),
            (Prog::Down, &["--dry-run", "vmtap0"]),
        ] {
            let copy = prog.copy(how);
            // stdout on /dev/full: ENOSPC.
            let argv: Vec<&OsStr> = std::iter::once(copy.as_os_str())
                .chain(args.iter().map(OsStr::new))
                .collect();
            let run_to = |stdout: std::process::Stdio| {
                let (mut cmd, _) = privileged_command(w.etc.path(), &alice(), &[], &argv);
                let out = cmd.stdout(stdout).output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                assert_eq!(out.status.code(), Some(1), "{how:?} {args:?}: {stderr}");
                stderr
            };
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            assert_eq!(
                run_to(full.into()),
                format!(
                    "{}: error: cannot write to standard output: No space left on device (os error 28)\n",
                    prog.name()
                ),
                "{how:?} {args:?}"
            );
            // stdout a pipe whose reader is gone: EPIPE.
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            let stderr = run_to(writer.into());
            assert!(stderr.contains("Broken pipe"), "{how:?} {args:?}: {stderr}");
        }
    }
    // Nothing was changed by any of it.
    assert_eq!(expect_link("vmtap0").master.as_deref(), Some("br0"));
}

/// Finding 9: a tap made the way libvirt makes it (the guest's MAC with `fe` first, or `fa`
/// when the guest's own starts with `fe`; already up) keeps its MAC, so it never becomes the
/// guest's.
#[test]
fn a_libvirt_style_tap_keeps_its_mac() {
    let w = World::new("libvirt-mac");
    for (tap, guest, tap_mac) in [
        ("vnet0", "52:54:00:12:34:56", "fe:54:00:12:34:56"),
        ("vnet1", "fe:54:00:ab:cd:ef", "fa:54:00:ab:cd:ef"),
    ] {
        add_tap(tap, Some(ALICE), None);
        ip(&["link", "set", "dev", tap, "address", tap_mac]);
        set_up(tap);
        assert_ok(&w.ifup(Install::SetuidRoot, &alice(), tap));
        let l = assert_attached(tap, "br0", 1400);
        assert_eq!(l.address.as_deref(), Some(tap_mac), "{tap}");
        assert_ne!(l.address.as_deref(), Some(guest), "{tap}");
    }
}

/// Under no-new-privileges the kernel withholds what the install grants (a file-capability exec
/// still gets AT_SECURE, a setuid one not even that): the error names no-new-privileges as the
/// reason instead of telling the admin to install what is installed, and `--help`, `--version`
/// and `--dry-run` work.
#[test]
fn no_new_privileges_is_named_as_the_reason() {
    let w = World::new("nnp");
    add_tap("vmtap0", Some(ALICE), None);
    let setpriv = Path::new("/usr/bin/setpriv");
    for how in PRIVILEGED {
        for prog in [Prog::Up, Prog::Down] {
            let copy = prog.copy(how);
            let run = |args: &[&str]| {
                let mut all = vec!["--no-new-privs", copy.to_str().unwrap()];
                all.extend_from_slice(args);
                run_privileged(&w.etc, &alice(), setpriv, &all, &[])
            };
            let out = run(&["--help"]);
            assert_eq!(out.code, 0, "{how:?} {prog:?}: {out:#?}");
            assert!(out.stdout.starts_with("Usage: "), "{out:#?}");
            let out = run(&["--version"]);
            assert_eq!(out.code, 0, "{how:?} {prog:?}: {out:#?}");
            if prog == Prog::Down {
                set_master("vmtap0", "br0");
            }
            let out = run(&["--dry-run", "vmtap0"]);
            assert_eq!(out.code, 0, "{how:?} {prog:?}: {out:#?}");
            assert!(out.stdout.starts_with("tap vmtap0 "), "{out:#?}");
            let before = links();
            let out = run(&["vmtap0"]);
            assert_refused(
                &out,
                1,
                prog,
                &["vmtap0", "Operation not permitted", "no-new-privileges"],
            );
            assert!(!out.stderr.contains("setcap"), "{how:?}: {out:#?}");
            assert_unchanged(&before, "a run under no-new-privileges");
            ip(&["link", "set", "vmtap0", "nomaster"]);
        }
    }
}

/// A setuid copy owned by another user (not root) gains that user's uid and no capability: the
/// helper gives that up and runs as the caller, and the kernel's "not permitted" comes with the
/// reason — the install gives no CAP_NET_ADMIN — not with no-new-privileges, which the helper
/// set on itself and the caller did not.
#[test]
fn a_setuid_copy_owned_by_another_user_is_named_as_the_reason() {
    let w = World::new("suid-other");
    add_tap("vmtap0", Some(ALICE), None);
    for prog in [Prog::Up, Prog::Down] {
        let root_copy = prog.copy(Install::SetuidRoot);
        let copy = root_copy.with_file_name(format!("{}-owned-by-bob", prog.name()));
        std::fs::copy(&root_copy, &copy).unwrap();
        // chown clears the setuid bit: set it after.
        std::os::unix::fs::chown(&copy, Some(BOB), Some(BOB)).unwrap();
        std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o4755))
            .unwrap();
        if prog == Prog::Down {
            set_master("vmtap0", "br0");
            set_up("vmtap0");
        }
        let before = links();
        let out = run_privileged(&w.etc, &alice(), &copy, &["vmtap0"], &[]);
        assert_refused(
            &out,
            1,
            prog,
            &[
                "vmtap0",
                "Operation not permitted",
                "gained privilege on exec, but not CAP_NET_ADMIN",
            ],
        );
        assert!(!out.stderr.contains("no-new-privileges"), "{out:#?}");
        assert_unchanged(&before, "a setuid copy owned by another user");
        std::fs::remove_file(&copy).unwrap();
    }
}

/// Routed taps and created bridges in privileged mode: a user's own tap gets the routes its rule
/// gives (and qemu-ifdown takes them back); another user's tap gets nothing; a declared bridge is
/// created only for a caller the ACL allows it to. Every refusal changes nothing.
#[test]
fn routes_and_created_bridges_follow_ownership_and_the_acl() {
    let w = World::new("routed");
    w.etc.write(
        "qemu-ifup-rs.conf",
        "create-bridge br-priv address 10.10.0.1/24\n\
         tap vm-web* route 192.0.2.10,2001:db8::10\n\
         tap vm-priv* bridge br-priv\n",
    );
    add_tap("vm-web0", Some(ALICE), None);
    add_tap("vm-web1", Some(BOB), None);
    add_tap("vm-priv0", Some(ALICE), None);
    let ours = |r: &ifup_testkit::RouteEntry| r.protocol == "112";
    for how in PRIVILEGED {
        // Bob's tap, Alice calling: nothing.
        let before = (links(), ifup_testkit::routes(false));
        let out = w.ifup(how, &alice(), "vm-web1");
        assert_refused(&out, 1, Prog::Up, &["vm-web1", "not the caller's"]);
        assert_eq!((links(), ifup_testkit::routes(false)), before);
        // Her own: routed; down: unrouted.
        assert_ok(&w.ifup(how, &alice(), "vm-web0"));
        let v4: Vec<_> = ifup_testkit::routes(false)
            .into_iter()
            .filter(ours)
            .collect();
        assert_eq!(v4.len(), 1, "{v4:?}");
        assert_eq!(
            (v4[0].dst.as_str(), v4[0].dev.as_deref()),
            ("192.0.2.10", Some("vm-web0"))
        );
        assert_eq!(
            ifup_testkit::routes(true).into_iter().filter(ours).count(),
            1
        );
        // Bob cannot take them down, or claim the address for his tap meanwhile.
        let out = w.ifdown(how, &bob(), "vm-web0");
        assert_refused(&out, 1, Prog::Down, &["vm-web0", "not the caller's"]);
        let out = w.ifup(how, &bob(), "vm-web1");
        assert_refused(
            &out,
            1,
            Prog::Up,
            &["vm-web1", "already routed via vm-web0"],
        );
        assert_ok(&w.ifdown(how, &alice(), "vm-web0"));
        assert!(!ifup_testkit::routes(false).iter().any(ours));
        assert!(!ifup_testkit::routes(true).iter().any(ours));
        assert!(!expect_link("vm-web0").up);
    }
    // The declared bridge: not allowed to alice (the ACL allows br0 only), so not created.
    let before = links();
    let out = w.ifup(Install::SetuidRoot, &alice(), "vm-priv0");
    assert_refused(
        &out,
        1,
        Prog::Up,
        &["bridge br-priv", "does not allow bridge br-priv"],
    );
    assert_eq!(links(), before);
    // Allowed: created, and the tap on it.
    w.etc
        .write("qemu/bridge.conf", "allow br0\nallow br-priv\n");
    assert_ok(&w.ifup(Install::FileCaps, &alice(), "vm-priv0"));
    assert_attached("vm-priv0", "br-priv", 1500);
    assert!(expect_link("br-priv").up);
}
