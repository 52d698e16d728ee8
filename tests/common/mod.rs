//! Helpers shared by the integration tests that run the `qemu-ifup` and `qemu-ifdown` cargo
//! built, as root, in a network namespace of the test's own (tests/ifup.rs, tests/port_options.rs,
//! tests/vlan_vm.rs, tests/routed.rs, tests/docs.rs).
// Each test crate uses a part of this module.
#![allow(dead_code)]

use std::path::Path;

use ifup_testkit::{expect_link, run, Netns, RunOutput};

pub const IFUP: &str = env!("CARGO_BIN_EXE_qemu-ifup");
pub const IFDOWN: &str = env!("CARGO_BIN_EXE_qemu-ifdown");
/// br_netfilter's per-namespace switch that sends bridged traffic through iptables; it exists
/// only while the module is loaded.
pub const NF_SYSCTL: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

pub fn ifup(args: &[&str]) -> RunOutput {
    run(Path::new(IFUP), args, &[])
}

pub fn ifdown(args: &[&str]) -> RunOutput {
    run(Path::new(IFDOWN), args, &[])
}

/// A config file with `text`, unique to the calling test (`test` names it within the test crate).
pub fn config(test: &str, text: &str) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}-configs", env!("CARGO_CRATE_NAME")));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{test}.conf"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A fresh namespace. Where br_netfilter is loaded ([`NF_SYSCTL`] exists), its per-namespace
/// default sends bridged traffic through iptables, which qemu-ifup warns about: turn it off so
/// only the test about warnings sees warnings.
pub fn netns() -> Netns {
    let ns = Netns::new();
    if Path::new(NF_SYSCTL).exists() {
        std::fs::write(NF_SYSCTL, "0").unwrap();
    }
    ns
}

/// Asserts a failure: the exit status, exactly one stderr line with the program's prefix, and
/// that it mentions each of `words`.
pub fn assert_fails(out: &RunOutput, code: i32, prog: &str, words: &[&str]) {
    assert_eq!(out.code, code, "exit status; output: {out:#?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one stderr line expected: {out:#?}");
    assert!(
        lines[0].starts_with(&format!("{prog}: error: ")),
        "prefix: {:?}",
        lines[0]
    );
    for w in words {
        assert!(lines[0].contains(w), "{w:?} missing from {:?}", lines[0]);
    }
}

/// The `qemu-ifup: warning:` lines of `out`'s stderr.
pub fn warnings(out: &RunOutput) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("qemu-ifup: warning: "))
        .collect()
}

/// Asserts that `tap` is up and a port of `bridge`.
pub fn assert_up_on(tap: &str, bridge: &str) {
    let l = expect_link(tap);
    assert_eq!(l.master.as_deref(), Some(bridge), "{l:#?}");
    assert!(l.up, "{l:#?}");
}

/// Asserts that `tap` is on no bridge and down.
pub fn assert_detached(tap: &str) {
    let l = expect_link(tap);
    assert_eq!(l.master, None, "{l:#?}");
    assert!(!l.up, "{l:#?}");
}
