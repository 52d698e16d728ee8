//! qemu-ifup / qemu-ifdown against the real kernel, each test in its own network namespace.
//! State is read back with `ip -j -d link show` (testkit), never from our own netlink code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{assert_detached, assert_fails, config, ifdown, ifup, IFDOWN, IFUP};
use ifup_testkit::{
    add_bridge, add_tap, add_tun, add_veth, expect_link, ip, link, links, run, set_master, set_mtu,
    Netns,
};

/// An empty config: no rule, no bridge line, so the default route decides (and the host's
/// /etc/qemu-ifup-rs.conf, if any, is not read).
fn empty_config(test: &str) -> String {
    config(test, "# empty\n")
}

/// A namespace with bridge `br0` (MTU `mtu`) carrying the default route, and tap `vmtap0`.
fn setup(mtu: u32) -> Netns {
    let ns = Netns::new();
    add_bridge("br0", Some(mtu));
    ip(&["addr", "add", "10.0.2.1/24", "dev", "br0"]);
    ip(&["route", "add", "default", "dev", "br0"]);
    add_tap("vmtap0", None, None);
    ns
}

fn assert_attached(tap: &str, bridge: &str, mtu: u32) {
    let l = expect_link(tap);
    assert_eq!(l.master.as_deref(), Some(bridge), "{l:?}");
    assert_eq!(l.mtu, mtu, "{l:?}");
    assert!(l.up, "{l:?}");
}

#[test]
fn attach_via_default_route_copies_bridge_mtu() {
    let _ns = setup(1400);
    let cfg = empty_config("attach_default_route");
    let out = ifup(&["--config", &cfg, "vmtap0"]);
    out.assert_success();
    assert_eq!(out.stderr, "");
    assert_attached("vmtap0", "br0", 1400);
    // tap-mac fe (the default): the host side of the tap starts with fe.
    let mac = expect_link("vmtap0").address.unwrap();
    assert!(mac.starts_with("fe:"), "{mac}");
}

#[test]
fn attach_twice_changes_nothing() {
    let _ns = setup(1500);
    let cfg = empty_config("attach_twice");
    ifup(&["--config", &cfg, "vmtap0"]).assert_success();
    let before = links();
    let out = ifup(&["--config", &cfg, "vmtap0"]);
    out.assert_success();
    assert_eq!(links(), before);
    assert_attached("vmtap0", "br0", 1500);
}

#[test]
fn detach_and_detach_twice() {
    let _ns = setup(1500);
    let cfg = empty_config("detach");
    ifup(&["--config", &cfg, "vmtap0"]).assert_success();
    ifdown(&["vmtap0"]).assert_success();
    assert_detached("vmtap0");
    let before = links();
    let out = ifdown(&["vmtap0"]);
    out.assert_success();
    assert_eq!(out.stderr, "");
    assert_eq!(links(), before);
}

#[test]
fn detach_missing_tap_is_success() {
    let _ns = setup(1500);
    let out = ifdown(&["vmtap9"]);
    out.assert_success();
    assert_eq!(out.stderr, "");
}

#[test]
fn missing_tap_fails() {
    let _ns = setup(1500);
    let cfg = empty_config("missing_tap");
    let before = links();
    let out = ifup(&["--config", &cfg, "vmtap9"]);
    assert_fails(&out, 1, "qemu-ifup", &["vmtap9", "does not exist"]);
    assert_eq!(links(), before);
}

#[test]
fn missing_bridge_fails_and_changes_nothing() {
    let _ns = setup(1500);
    let cfg = config("missing_bridge", "bridge br-nope\n");
    let before = links();
    let out = ifup(&["--config", &cfg, "vmtap0"]);
    assert_fails(
        &out,
        1,
        "qemu-ifup",
        &["vmtap0", "br-nope", "does not exist", ":1"],
    );
    assert_eq!(links(), before);
}

#[test]
fn bridge_that_is_not_a_bridge_fails() {
    let _ns = setup(1500);
    add_veth("veth0", "veth1");
    let cfg = config("not_a_bridge", "bridge veth0\n");
    let before = links();
    let out = ifup(&["--config", &cfg, "vmtap0"]);
    assert_fails(&out, 1, "qemu-ifup", &["vmtap0", "veth0", "not a bridge"]);
    assert_eq!(links(), before);
}

#[test]
fn non_taps_are_refused_by_both() {
    let _ns = setup(1500);
    add_veth("veth0", "veth1");
    add_tun("tun0");
    add_bridge("br1", None);
    let cfg = empty_config("non_taps");
    let before = links();
    for (name, what) in [
        ("veth0", "veth"),
        ("br1", "bridge"),
        ("lo", "loopback"),
        ("tun0", "tun"),
    ] {
        let out = ifup(&["--config", &cfg, name]);
        assert_fails(&out, 1, "qemu-ifup", &[name, what, "not a tap"]);
        let out = ifdown(&[name]);
        assert_fails(&out, 1, "qemu-ifdown", &[name, what, "not a tap"]);
    }
    assert_eq!(links(), before);
}

#[test]
fn invalid_tap_names_are_usage_errors() {
    let _ns = setup(1500);
    let before = links();
    for bad in [
        "",
        "a23456789012345b",
        "a/b",
        "a b",
        "a\tb",
        "a\nb",
        "a\u{7}b",
        ".",
        "..",
        "-x",
    ] {
        for (bin, prog) in [(IFUP, "qemu-ifup"), (IFDOWN, "qemu-ifdown")] {
            let out = run(Path::new(bin), &[bad], &[]);
            assert_eq!(out.code, 2, "{bad:?}: {out:#?}");
            assert_eq!(out.stderr.lines().count(), 1, "{bad:?}: {out:#?}");
            assert!(
                out.stderr.starts_with(&format!("{prog}: error: ")),
                "{out:#?}"
            );
        }
    }
    assert_eq!(links(), before);
}

#[test]
fn default_route_via_non_bridge_fails() {
    let _ns = Netns::new();
    add_veth("veth0", "veth1");
    ip(&["link", "set", "veth0", "up"]);
    ip(&["link", "set", "veth1", "up"]);
    ip(&["addr", "add", "10.0.3.1/24", "dev", "veth0"]);
    ip(&["route", "add", "default", "dev", "veth0"]);
    add_tap("vmtap0", None, None);
    let cfg = empty_config("default_non_bridge");
    let before = links();
    let out = ifup(&["--config", &cfg, "vmtap0"]);
    assert_fails(
        &out,
        1,
        "qemu-ifup",
        &[
            "vmtap0",
            "veth0",
            "no default route goes via a bridge",
            "bridge NAME",
        ],
    );
    assert_eq!(links(), before);
}

#[test]
fn no_default_route_and_no_config_fails() {
    let _ns = Netns::new();
    add_bridge("br0", None);
    add_tap("vmtap0", None, None);
    let cfg = empty_config("no_route");
    let before = links();
    let out = ifup(&["--config", &cfg, "vmtap0"]);
    assert_fails(&out, 1, "qemu-ifup", &["vmtap0", "no default route"]);
    assert_eq!(links(), before);
}

#[test]
fn ipv6_default_route_is_used_when_there_is_no_ipv4_one() {
    let _ns = Netns::new();
    add_bridge("br6", None);
    ip(&["addr", "add", "fd00::1/64", "dev", "br6", "nodad"]);
    ip(&["-6", "route", "add", "default", "dev", "br6"]);
    add_tap("vmtap0", None, None);
    let cfg = empty_config("ipv6_route");
    ifup(&["--config", &cfg, "vmtap0"]).assert_success();
    assert_attached("vmtap0", "br6", 1500);
}

#[test]
fn tap_rule_beats_bridge_line() {
    let _ns = setup(1500);
    add_bridge("br-lab", Some(1450));
    add_tap("vm-lab-1", None, None);
    let cfg = config(
        "rule_beats_line",
        "# lab machines go to br-lab\nbridge br0\ntap vm-lab-*  bridge br-lab\n",
    );
    ifup(&["--config", &cfg, "vm-lab-1"]).assert_success();
    assert_attached("vm-lab-1", "br-lab", 1450);
    ifup(&["--config", &cfg, "vmtap0"]).assert_success();
    assert_attached("vmtap0", "br0", 1500);
}

#[test]
fn config_from_environment() {
    let _ns = setup(1500);
    add_bridge("br-env", None);
    let cfg = config("from_env", "bridge br-env\n");
    let out = run(Path::new(IFUP), &["vmtap0"], &[("QEMU_IFUP_CONFIG", &cfg)]);
    out.assert_success();
    assert_attached("vmtap0", "br-env", 1500);
}

#[test]
fn fixed_mtu_9000() {
    let _ns = setup(9000);
    let cfg = config("mtu9000", "bridge br0 mtu 9000\n");
    ifup(&["--config", &cfg, "vmtap0"]).assert_success();
    assert_attached("vmtap0", "br0", 9000);
}

#[test]
fn tap_mac_keep() {
    let _ns = setup(1500);
    let mac = expect_link("vmtap0").address.unwrap();
    let cfg = config("mac_keep", "bridge br0 tap-mac keep\n");
    ifup(&["--config", &cfg, "vmtap0"]).assert_success();
    assert_eq!(expect_link("vmtap0").address.unwrap(), mac);
}

#[test]
fn config_syntax_errors_name_file_and_line() {
    let _ns = setup(1500);
    let before = links();
    for (i, (text, words)) in [
        ("bridge br0\nbogus x\n", &["bogus"][..]),
        ("\n\nbridge br0 mtu 12\n", &["mtu"][..]),
        ("bridge br0 isolated maybe\n", &["isolated"][..]),
        ("tap vm-[ bridge br0\n", &["vm-["][..]),
    ]
    .iter()
    .enumerate()
    {
        let cfg = config(&format!("syntax{i}"), text);
        let line = text.lines().count();
        let out = ifup(&["--config", &cfg, "vmtap0"]);
        let at = format!("{cfg}:{line}");
        let mut expect = vec!["tap vmtap0: ", at.as_str()];
        expect.extend_from_slice(words);
        assert_fails(&out, 2, "qemu-ifup", &expect);
    }
    assert_eq!(links(), before);
}

#[test]
fn dry_run_changes_nothing_and_prints_the_plan() {
    let _ns = setup(1400);
    let cfg = empty_config("dry_run");
    let before = links();
    let out = ifup(&["--dry-run", "--config", &cfg, "vmtap0"]);
    out.assert_success();
    assert_eq!(links(), before);
    for w in [
        "vmtap0",
        "br0",
        "set mtu 1400",
        "attach to bridge br0",
        "set up",
        "set address fe:",
    ] {
        assert!(out.stdout.contains(w), "{w:?} missing from {}", out.stdout);
    }
    ifup(&["--config", &cfg, "vmtap0"]).assert_success();
    let before = links();
    let out = ifdown(&["--dry-run", "vmtap0"]);
    out.assert_success();
    assert!(out.stdout.contains("detach from br0"), "{}", out.stdout);
    assert_eq!(links(), before);
}

#[test]
fn root_may_move_a_tap_between_bridges() {
    let _ns = setup(1500);
    add_bridge("br1", None);
    set_master("vmtap0", "br1");
    let cfg = empty_config("move");
    ifup(&["--config", &cfg, "vmtap0"]).assert_success();
    assert_attached("vmtap0", "br0", 1500);
}

#[test]
fn failure_after_attach_is_undone() {
    // VLAN options need vlan_filtering: refused before anything changes.
    let _ns = setup(1500);
    let cfg = config("vlan_no_filtering", "bridge br0 vlan 20\n");
    let before = links();
    let out = ifup(&["--config", &cfg, "vmtap0"]);
    assert_fails(&out, 1, "qemu-ifup", &["vmtap0", "br0", "vlan_filtering"]);
    assert_eq!(links(), before);
}

#[test]
fn mtu_the_bridge_cannot_take_is_rolled_back() {
    // A tap MTU larger than the tap allows (65521 for taps) fails in the kernel: nothing may
    // stay half-done (no master, original MTU, down).
    let _ns = setup(1500);
    let cfg = config("mtu_too_big", "bridge br0 mtu 65535\n");
    let before = link("vmtap0").unwrap();
    let out = ifup(&["--config", &cfg, "vmtap0"]);
    assert_fails(&out, 1, "qemu-ifup", &["vmtap0", "br0"]);
    let after = link("vmtap0").unwrap();
    assert_eq!(after.master, None);
    assert_eq!(after.mtu, before.mtu);
    assert!(!after.up);
    assert_eq!(after.address, before.address);
}

#[test]
fn help_and_version() {
    let out = run(Path::new(IFUP), &["--help"], &[]);
    out.assert_success();
    assert!(out.stdout.contains("Usage: qemu-ifup"));
    let out = run(Path::new(IFDOWN), &["--version"], &[]);
    out.assert_success();
    assert!(out.stdout.starts_with("qemu-ifdown (qemu-ifup-rs) "));
    let out = run(Path::new(IFUP), &["--frobnicate", "x"], &[]);
    assert_fails(&out, 2, "qemu-ifup", &["--frobnicate"]);
}

#[test]
fn without_cap_net_admin_the_error_says_how_to_fix_it() {
    let _ns = setup(1500);
    let cfg = empty_config("no_cap");
    // The config must be readable by the unprivileged uid.
    let before = links();
    let out = ifup_testkit::run_as(
        Path::new(IFUP),
        &["--config", &cfg, "vmtap0"],
        &[],
        ifup_testkit::Creds {
            uid: 65534,
            gid: 65534,
        },
    );
    assert_fails(
        &out,
        1,
        "qemu-ifup",
        &["vmtap0", "CAP_NET_ADMIN", "setcap cap_net_admin+ep"],
    );
    assert_eq!(links(), before);
    let _ = set_mtu;
}

// ---------------------------------------------------------------------------------------------
// What following the docs literally found (each failed before the fix).

/// The re-run converges the tap to its rule, both ways: a rule that gained `isolated on mtu
/// 1300` gets both on the attached, up tap; a tap attached with `hairpin on learning off flood
/// off` gets the kernel's new-port flags back under a plain rule. The tap stays attached and up.
#[test]
fn rerun_converges_flags_and_mtu_both_ways() {
    // The bridge's MTU set by the admin (1400), so it does not follow its ports'.
    let _ns = setup(1400);
    let plain = config("converge_plain", "bridge br0\n");
    ifup(&["--config", &plain, "vmtap0"]).assert_success();
    let more = config("converge_more", "bridge br0 isolated on mtu 1300\n");
    ifup(&["--config", &more, "vmtap0"]).assert_success();
    assert_attached("vmtap0", "br0", 1300);
    let port = expect_link("vmtap0").bridge_port.unwrap();
    assert!(
        port.isolated && !port.hairpin && port.learning && port.flood,
        "{port:?}"
    );

    let odd = config(
        "converge_odd",
        "bridge br0 hairpin on learning off flood off\n",
    );
    ifup(&["--config", &odd, "vmtap0"]).assert_success();
    let port = expect_link("vmtap0").bridge_port.unwrap();
    assert!(
        !port.isolated && port.hairpin && !port.learning && !port.flood,
        "{port:?}"
    );
    ifup(&["--config", &plain, "vmtap0"]).assert_success();
    assert_attached("vmtap0", "br0", 1400);
    let port = expect_link("vmtap0").bridge_port.unwrap();
    assert!(
        !port.isolated && !port.hairpin && port.learning && port.flood,
        "{port:?}"
    );
    // Converged: a third run changes nothing (and says nothing).
    let before = links();
    let out = ifup(&["--config", &plain, "vmtap0"]);
    out.assert_success();
    assert_eq!(links(), before);
    let out = ifup(&["--dry-run", "--config", &plain, "vmtap0"]);
    assert!(out.stdout.contains("nothing to do"), "{out:#?}");
}

/// `mtu 65535` is more than a tap takes (65521): refused by the plan, with the dry run showing
/// the same error, and an attached, up tap is left exactly as it was (not down on the bridge).
#[test]
fn an_mtu_above_the_taps_maximum_changes_nothing() {
    let _ns = setup(1500);
    let cfg = config("mtu_max", "bridge br0 mtu 65535\n");
    for attached in [false, true] {
        if attached {
            ifup(&["--config", &empty_config("mtu_max_plain"), "vmtap0"]).assert_success();
            assert_attached("vmtap0", "br0", 1500);
        }
        let before = links();
        for args in [
            &["--dry-run", "--config", &cfg, "vmtap0"][..],
            &["--config", &cfg, "vmtap0"],
        ] {
            let out = ifup(args);
            assert_fails(
                &out,
                1,
                "qemu-ifup",
                &["vmtap0", "br0", "mtu 65535", "at most 65521"],
            );
            assert_eq!(links(), before, "attached: {attached}");
        }
    }
}

/// Run by root, a symlinked config is read (a common config-management layout); only
/// privileged mode refuses symlinks.
#[test]
fn root_follows_a_symlinked_config() {
    let _ns = setup(1500);
    add_bridge("br1", None);
    let real = config("symlink_target", "bridge br1\n");
    let link = format!("{real}.link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&real, &link).unwrap();
    ifup(&["--config", &link, "vmtap0"]).assert_success();
    assert_attached("vmtap0", "br1", 1500);
    // So is an include that is a symlink.
    ifdown(&["vmtap0"]).assert_success();
    let main = config("symlink_main", &format!("include {link}\n"));
    ifup(&["--config", &main, "vmtap0"]).assert_success();
    assert_attached("vmtap0", "br1", 1500);
}

/// Every config problem: exit status 2, and the file and line.
#[test]
fn every_config_problem_is_exit_2_with_file_and_line() {
    let _ns = setup(1500);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ifup-config-problems");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    };
    let d = dir.display();
    let cases: Vec<(String, Vec<String>)> = vec![
        // A missing include.
        (
            write(
                "missing.conf",
                format!("bridge br0\ninclude {d}/nope.conf\n").as_bytes(),
            ),
            vec![format!("{d}/missing.conf:2"), "does not exist".into()],
        ),
        // An include that is a directory.
        (
            write("dir.conf", format!("# x\ninclude {d}\n").as_bytes()),
            vec![format!("{d}/dir.conf:2"), "not a regular file".into()],
        ),
        // A loop.
        (
            write("loop.conf", format!("include {d}/loop.conf\n").as_bytes()),
            vec![format!("{d}/loop.conf:1"), "include loop".into()],
        ),
        // A byte that is not UTF-8 in a line (in a comment it is nothing: see below).
        (
            write("utf8.conf", b"bridge br0\ntap vm\xff bridge br0\n"),
            vec![format!("{d}/utf8.conf:2"), "not valid UTF-8".into()],
        ),
        // A no-break space is not a separator.
        (
            write("nbsp.conf", "bridge\u{a0}br0\n".as_bytes()),
            vec![format!("{d}/nbsp.conf:1"), "unknown keyword".into()],
        ),
    ];
    let before = links();
    for (path, words) in &cases {
        let out = ifup(&["--config", path, "vmtap0"]);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_fails(&out, 2, "qemu-ifup", &words);
        assert_eq!(links(), before, "{path}");
    }
    let ok = write("comment.conf", b"# caf\xe9\nbridge br0 # \xff\xfe\n");
    ifup(&["--config", &ok, "vmtap0"]).assert_success();
    assert_attached("vmtap0", "br0", 1500);
}

/// The bridge choice without a config, as Debian's /etc/qemu-ifup makes it: two default routes,
/// the first (metric 100) via a veth, the second (metric 200) via a bridge: the bridge. And a
/// multipath default route with the bridge among its next hops (which Debian's script does not
/// see): the bridge.
#[test]
fn default_route_bridge_as_debians_script_picks_it() {
    let _ns = Netns::new();
    add_veth("vx", "vy");
    add_bridge("br0", Some(1400));
    for dev in ["vx", "vy"] {
        ip(&["link", "set", dev, "up"]);
    }
    ip(&["addr", "add", "10.0.3.1/24", "dev", "vx"]);
    ip(&["addr", "add", "10.0.2.1/24", "dev", "br0"]);
    ip(&[
        "route", "add", "default", "via", "10.0.3.2", "dev", "vx", "metric", "100",
    ]);
    ip(&[
        "route", "add", "default", "via", "10.0.2.2", "dev", "br0", "metric", "200", "onlink",
    ]);
    add_tap("vmtap0", None, None);
    let cfg = empty_config("debian_two_routes");
    let out = ifup(&["--dry-run", "--config", &cfg, "vmtap0"]);
    assert!(out.stdout.contains("bridge br0 ("), "{out:#?}");
    ifup(&["--config", &cfg, "vmtap0"]).assert_success();
    assert_attached("vmtap0", "br0", 1400);
    ifdown(&["vmtap0"]).assert_success();

    ip(&["route", "flush", "exact", "0.0.0.0/0"]);
    ip(&[
        "route", "add", "default", "nexthop", "via", "10.0.3.2", "dev", "vx", "nexthop", "via",
        "10.0.2.2", "dev", "br0", "onlink",
    ]);
    ifup(&["--config", &cfg, "vmtap0"]).assert_success();
    assert_attached("vmtap0", "br0", 1400);
    ifdown(&["vmtap0"]).assert_success();

    // Only the veth: the error names it.
    ip(&["route", "flush", "exact", "0.0.0.0/0"]);
    ip(&["route", "add", "default", "via", "10.0.3.2", "dev", "vx"]);
    let out = ifup(&["--config", &cfg, "vmtap0"]);
    assert_fails(
        &out,
        1,
        "qemu-ifup",
        &["no default route goes via a bridge", "vx"],
    );
}

/// qemu-ifdown reads no config, and says so: `--config` is a usage error, whatever the file.
#[test]
fn ifdown_takes_no_config() {
    let _ns = setup(1500);
    for args in [
        &["-c", "/nonexistent", "vmtap0"][..],
        &["--config=/etc/passwd", "vmtap0"],
    ] {
        let out = ifdown(args);
        assert_fails(&out, 2, "qemu-ifdown", &["--config", "reads no config"]);
    }
    let out = ifdown(&["--help"]);
    out.assert_success();
    assert!(!out.stdout.contains("--config"), "{}", out.stdout);
    assert!(out.stdout.contains("reads no config"), "{}", out.stdout);
}

/// A tun (layer 3) is refused with a plain message.
#[test]
fn a_tun_is_said_to_be_a_tun() {
    let _ns = setup(1500);
    add_tun("tun0");
    let out = ifup(&["--config", &empty_config("tun_msg"), "tun0"]);
    assert_fails(
        &out,
        1,
        "qemu-ifup",
        &["tun0 is a tun device, not a tap: refusing to touch it"],
    );
    assert!(!out.stderr.contains("not a tap), not a tap"), "{out:#?}");
}
