//! The VLAN options (`vlan`, `tagged`) under a kernel that has bridge VLAN filtering.
//!
//! The host's kernel may lack it (this machine's does), so the one test here boots Debian's
//! kernel under QEMU (TCG, no KVM) with an initramfs holding busybox, iproute2 (`ip`, `bridge`
//! and their libraries), the bridge/tun/br_netfilter modules, `qemu-ifup`, and this very test
//! executable, all at their host paths. The guest's `/init` runs this executable again with
//! [`GUEST_ENV`] set, filtered to the same test: there the test runs every case of [`CASES`],
//! each on its own thread in its own network namespace, printing one marker line per case. Back
//! on the host, the test asserts that every case reported `VLAN-CASE-OK` and shows the guest's
//! console otherwise. There is no `#[test]` that only makes sense inside the guest, so nothing
//! passes on the host by skipping.
//!
//! State is read back with iproute2 (`bridge -j vlan show`, `ip -j -d link show`), and traffic
//! with frames written to and read from the taps' queues (ifup_testkit::tapio).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{assert_up_on, config, ifup, netns, warnings, IFUP, NF_SYSCTL};
use ifup_testkit::bridge_tool::{bridge_path, port_vlans, PortVlan};
use ifup_testkit::tapio::{self, open_ports, BROADCAST, ETH_P_TEST};
use ifup_testkit::{
    add_tap, expect_link, ip, ip_path, links, GuestBuilder, GuestImage, Qemu, RunOutput,
    QEMU_TIMEOUT,
};

/// Set by the guest's `/init` for the run inside the guest.
const GUEST_ENV: &str = "IFUP_RS_VLAN_GUEST";
/// On the guest kernel's command line, so that [`GUEST_ENV`] alone never switches modes.
const GUEST_CMDLINE: &str = "ifup_rs.vlan_guest=1";
const CASE_OK: &str = "VLAN-CASE-OK";
const CASE_FAIL: &str = "VLAN-CASE-FAIL";
const CASES_DONE: &str = "VLAN-CASES-DONE";
const DRIVER_EXIT: &str = "VLAN-DRIVER-EXIT";
const TEST_NAME: &str = "vlan_options_under_a_kernel_with_bridge_vlan_filtering";

/// Every case the guest runs, by name.
const CASES: &[(&str, fn())] = &[
    ("access_port", access_port),
    ("trunk_with_ranges", trunk_with_ranges),
    (
        "access_and_trunk_from_tap_rule",
        access_and_trunk_from_tap_rule,
    ),
    ("flags_and_vlans_together", flags_and_vlans_together),
    ("second_run_changes_nothing", second_run_changes_nothing),
    ("rerun_converges_vlans", rerun_converges_vlans),
    (
        "bridge_default_pvid_is_removed",
        bridge_default_pvid_is_removed,
    ),
    ("bridge_without_default_pvid", bridge_without_default_pvid),
    ("default_vlan_also_tagged", default_vlan_also_tagged),
    (
        "vlan_on_non_filtering_bridge_fails_detached",
        vlan_on_non_filtering_bridge_fails_detached,
    ),
    ("dry_run_lists_vlans", dry_run_lists_vlans),
    (
        "vlan_traffic_access_and_trunk",
        vlan_traffic_access_and_trunk,
    ),
    ("nf_call_iptables_warning", nf_call_iptables_warning),
];

#[test]
fn vlan_options_under_a_kernel_with_bridge_vlan_filtering() {
    if std::env::var_os(GUEST_ENV).is_some() {
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        assert!(
            cmdline.split_whitespace().any(|a| a == GUEST_CMDLINE),
            "{GUEST_ENV} is set but this is not the test guest (no {GUEST_CMDLINE} in \
             /proc/cmdline): unset it"
        );
        run_cases_in_guest();
        return;
    }
    let started = Instant::now();
    let image = guest_image();
    let built = started.elapsed();
    let vm = Qemu::options_without_nic(&image)
        .append(GUEST_CMDLINE)
        .memory_mib(512)
        .spawn();
    let exit = vm.wait_exit(QEMU_TIMEOUT);
    eprintln!(
        "vlan guest: image ready after {built:.1?}, QEMU ran {:.1?}",
        exit.elapsed
    );
    let show = || {
        format!(
            "--- guest console ---\n{}\n--- QEMU stderr ---\n{}",
            exit.console, exit.stderr
        )
    };
    assert!(
        exit.console.contains(CASES_DONE),
        "the guest did not finish its cases\n{}",
        show()
    );
    let passed = |name: &str| {
        exit.console.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(CASE_OK) && words.next() == Some(name)
        })
    };
    let failed: Vec<&str> = CASES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !passed(name))
        .collect();
    assert!(
        failed.is_empty(),
        "cases failed in the guest: {failed:?}\n{}",
        show()
    );
    assert!(
        exit.console.contains(&format!("{DRIVER_EXIT} 0")),
        "the test executable failed in the guest\n{}",
        show()
    );
}

/// The guest: Debian's kernel, the modules, iproute2, qemu-ifup and this executable.
fn guest_image() -> GuestImage {
    let exe = std::env::current_exe().unwrap();
    let exe_s = exe.to_str().unwrap().to_owned();
    let init = format!(
        "cd /\n\
         {GUEST_ENV}=1 {exe_s} {TEST_NAME} --exact --nocapture --test-threads=1\n\
         echo \"{DRIVER_EXIT} $?\"\n"
    );
    GuestBuilder::new("vlan")
        .module("bridge")
        .module("tun")
        .module("br_netfilter")
        .program(ip_path(), "/usr/sbin/ip")
        .program(bridge_path(), "/usr/sbin/bridge")
        .program(IFUP, IFUP)
        .program(&exe, &exe_s)
        .init(&init)
        .build(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// In the guest: each case on its own thread (so in its own namespace), one marker line each.
fn run_cases_in_guest() {
    // libtest printed `test NAME ... ` without a newline: start the markers on their own line.
    println!();
    let mut failed = Vec::new();
    for (name, case) in CASES {
        let t = Instant::now();
        let result = std::thread::Builder::new()
            .name((*name).to_owned())
            .spawn(move || std::panic::catch_unwind(AssertUnwindSafe(case)))
            .unwrap()
            .join();
        match result {
            Ok(Ok(())) => println!("{CASE_OK} {name} ({:.1?})", t.elapsed()),
            _ => {
                println!("{CASE_FAIL} {name} (the panic message is above)");
                failed.push(*name);
            }
        }
    }
    println!("{CASES_DONE}");
    assert!(failed.is_empty(), "failed in the guest: {failed:?}");
}

// ---------------------------------------------------------------------------------------------
// Helpers (in the guest).

/// Bridge `name`, up, VLAN filtering on (`vlan_default_pvid` as given; the kernel default is 1).
fn add_vlan_bridge(name: &str, default_pvid: Option<u16>) {
    let pvid = default_pvid.map(|p| p.to_string());
    let mut args = vec!["link", "add", name, "type", "bridge", "vlan_filtering", "1"];
    if let Some(p) = &pvid {
        args.extend(["vlan_default_pvid", p.as_str()]);
    }
    ip(&args);
    ip(&["link", "set", name, "up"]);
}

fn tap(name: &str) {
    add_tap(name, None, None);
}

fn v(vid: u16, pvid: bool, untagged: bool) -> PortVlan {
    PortVlan {
        vid,
        pvid,
        untagged,
    }
}

fn tagged(vids: impl IntoIterator<Item = u16>) -> Vec<PortVlan> {
    vids.into_iter().map(|vid| v(vid, false, false)).collect()
}

fn sorted(mut vlans: Vec<PortVlan>) -> Vec<PortVlan> {
    vlans.sort();
    vlans
}

fn ok(out: &RunOutput) {
    out.assert_success();
    assert!(!out.stderr.contains("error"), "unexpected stderr: {out:#?}");
}

// ---------------------------------------------------------------------------------------------
// The cases (in the guest).

/// `vlan 20`: PVID 20, egress untagged, and the default VLAN 1 is gone from the port.
fn access_port() {
    let _ns = netns();
    add_vlan_bridge("br0", None);
    tap("vmtap0");
    let cfg = config("access", "bridge br0 vlan 20\n");
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    assert_up_on("vmtap0", "br0");
    assert_eq!(port_vlans("vmtap0"), [v(20, true, true)]);
}

/// `tagged 10,20-29`: the ranges tagged, VLAN 1 stays the untagged native VLAN.
fn trunk_with_ranges() {
    let _ns = netns();
    add_vlan_bridge("br0", None);
    tap("vmtap0");
    let cfg = config("trunk", "bridge br0 tagged 10,20-29\n");
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    assert_up_on("vmtap0", "br0");
    let mut want = vec![v(1, true, true)];
    want.extend(tagged([10]));
    want.extend(tagged(20..=29));
    assert_eq!(port_vlans("vmtap0"), sorted(want));
}

/// A `tap` rule with both: access VLAN 20, trunk 10 and 30-39, no VLAN 1.
fn access_and_trunk_from_tap_rule() {
    let _ns = netns();
    add_vlan_bridge("br0", None);
    add_vlan_bridge("br-other", None);
    tap("vm-lab-1");
    let cfg = config(
        "access_trunk",
        "bridge br-other\ntap vm-lab-* bridge br0 vlan 20 tagged 10,30-39\n",
    );
    ok(&ifup(&["--config", &cfg, "vm-lab-1"]));
    assert_up_on("vm-lab-1", "br0");
    let mut want = vec![v(20, true, true)];
    want.extend(tagged([10]));
    want.extend(tagged(30..=39));
    assert_eq!(port_vlans("vm-lab-1"), sorted(want));
}

/// Port flags and VLANs go in the same `AF_BRIDGE` message: both land.
fn flags_and_vlans_together() {
    let _ns = netns();
    add_vlan_bridge("br0", None);
    tap("vmtap0");
    let cfg = config(
        "flags_vlans",
        "bridge br0 vlan 20 tagged 30 isolated on hairpin on learning off flood off\n",
    );
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    assert_up_on("vmtap0", "br0");
    assert_eq!(
        port_vlans("vmtap0"),
        [v(20, true, true), v(30, false, false)]
    );
    let l = expect_link("vmtap0");
    let p = l.bridge_port.clone().expect("a bridge port");
    assert!(p.isolated && p.hairpin && !p.learning && !p.flood, "{l:#?}");
}

/// Idempotent: a second run on the attached, up tap changes neither links nor VLANs.
fn second_run_changes_nothing() {
    let _ns = netns();
    add_vlan_bridge("br0", None);
    tap("vmtap0");
    let cfg = config("twice", "bridge br0 vlan 20 tagged 30-39\n");
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    let (links_before, vlans_before) = (links(), port_vlans("vmtap0"));
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    assert_eq!(links(), links_before);
    assert_eq!(port_vlans("vmtap0"), vlans_before);
    // Set down behind our back: the next run applies the port settings again and brings it up.
    ip(&["link", "set", "vmtap0", "down"]);
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    assert_up_on("vmtap0", "br0");
    assert_eq!(port_vlans("vmtap0"), vlans_before);
}

/// A re-run converges the port's VLANs to the rule as it is now (read back with RTM_GETVLAN):
/// from an access port with a trunk to a plain trunk (20 and 30-39 go, the bridge's default VLAN
/// 1 comes back as the untagged PVID, 10 comes), and from there to a plain rule (a new port's
/// VLANs: 1 alone). The tap stays up on the bridge throughout.
fn rerun_converges_vlans() {
    let _ns = netns();
    add_vlan_bridge("br0", None);
    tap("vmtap0");
    let first = config("converge_first", "bridge br0 vlan 20 tagged 30-39\n");
    ok(&ifup(&["--config", &first, "vmtap0"]));
    let mut want = vec![v(20, true, true)];
    want.extend(tagged(30..=39));
    assert_eq!(port_vlans("vmtap0"), sorted(want));
    let second = config("converge_second", "bridge br0 tagged 10\n");
    let out = ifup(&["--dry-run", "--config", &second, "vmtap0"]);
    assert!(out.stdout.contains("remove vlan 20"), "{out:#?}");
    assert!(out.stdout.contains("remove vlan 30-39"), "{out:#?}");
    ok(&ifup(&["--config", &second, "vmtap0"]));
    assert_up_on("vmtap0", "br0");
    assert_eq!(
        port_vlans("vmtap0"),
        [v(1, true, true), v(10, false, false)]
    );
    let plain = config("converge_plain", "bridge br0\n");
    ok(&ifup(&["--config", &plain, "vmtap0"]));
    assert_up_on("vmtap0", "br0");
    assert_eq!(port_vlans("vmtap0"), [v(1, true, true)]);
}

/// A bridge whose new ports get VLAN 5: `vlan 20` removes 5 (not 1), so the access port is in
/// VLAN 20 only.
fn bridge_default_pvid_is_removed() {
    let _ns = netns();
    add_vlan_bridge("br0", Some(5));
    tap("vmtap0");
    let cfg = config("pvid5", "bridge br0 vlan 20\n");
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    assert_eq!(port_vlans("vmtap0"), [v(20, true, true)]);
}

/// A bridge with no default VLAN (`vlan_default_pvid 0`): nothing to remove, still works.
fn bridge_without_default_pvid() {
    let _ns = netns();
    add_vlan_bridge("br0", Some(0));
    tap("vmtap0");
    let cfg = config("pvid0", "bridge br0 vlan 20 tagged 7\n");
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    assert_eq!(
        port_vlans("vmtap0"),
        [v(7, false, false), v(20, true, true)]
    );
}

/// `vlan 20 tagged 1,30`: the default VLAN 1 is wanted tagged, so it stays, re-added tagged
/// (the kernel then drops its PVID and untagged flags).
fn default_vlan_also_tagged() {
    let _ns = netns();
    add_vlan_bridge("br0", None);
    tap("vmtap0");
    let cfg = config("vlan1_tagged", "bridge br0 vlan 20 tagged 1,30\n");
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    assert_eq!(
        port_vlans("vmtap0"),
        [v(1, false, false), v(20, true, true), v(30, false, false)]
    );
}

/// `vlan`/`tagged` on a bridge without `vlan_filtering`: exit 1, one error line that says what
/// to do, the tap neither attached nor up.
fn vlan_on_non_filtering_bridge_fails_detached() {
    let _ns = netns();
    ip(&[
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "vlan_filtering",
        "0",
    ]);
    ip(&["link", "set", "br0", "up"]);
    tap("vmtap0");
    for (name, text) in [
        ("nofilter_vlan", "bridge br0 vlan 20\n"),
        ("nofilter_tagged", "bridge br0 tagged 10\n"),
    ] {
        let cfg = config(name, text);
        let before = links();
        let out = ifup(&["--config", &cfg, "vmtap0"]);
        assert_eq!(out.code, 1, "{out:#?}");
        assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
        assert!(
            out.stderr.starts_with("qemu-ifup: error: ")
                && out.stderr.contains("vmtap0")
                && out.stderr.contains("br0")
                && out.stderr.contains("vlan_filtering 1"),
            "{out:#?}"
        );
        assert_eq!(links(), before);
        let l = expect_link("vmtap0");
        assert!(l.master.is_none() && !l.up, "{l:#?}");
    }
}

/// `--dry-run` lists every option, VLANs included, and changes nothing.
fn dry_run_lists_vlans() {
    let _ns = netns();
    add_vlan_bridge("br0", None);
    tap("vmtap0");
    let cfg = config(
        "dry_run",
        "bridge br0 mtu 1400 vlan 20 tagged 10,30-39 isolated on hairpin on learning off \
         flood off tap-mac fe\n",
    );
    let before = links();
    let out = ifup(&["--dry-run", "--config", &cfg, "vmtap0"]);
    out.assert_success();
    assert_eq!(links(), before);
    assert!(port_vlans("vmtap0").is_empty());
    for line in [
        "set address fe:",
        "set mtu 1400",
        "attach to bridge br0",
        "set bridge-port isolated on",
        "set bridge-port hairpin on",
        "set bridge-port learning off",
        "set bridge-port flood off",
        "remove vlan 1",
        "add vlan 20 pvid untagged",
        "add vlan 10 tagged",
        "add vlan 30-39 tagged",
        "set up",
    ] {
        assert!(
            out.stdout.contains(line),
            "{line:?} missing: {}",
            out.stdout
        );
    }
}

/// Frames: the trunk's tagged VLAN 20 reaches the VLAN 20 access port untagged and not the
/// VLAN 30 one; the access port's untagged frames reach the trunk tagged 20; untagged frames on
/// the trunk (native VLAN 1) reach neither access port.
fn vlan_traffic_access_and_trunk() {
    let _ns = netns();
    add_vlan_bridge("br0", None);
    for t in ["vm-trunk", "vm-a20", "vm-b30"] {
        tap(t);
    }
    let cfg = config(
        "traffic",
        "tap vm-trunk bridge br0 tagged 20,30\n\
         tap vm-a20 bridge br0 vlan 20\n\
         tap vm-b30 bridge br0 vlan 30\n",
    );
    for t in ["vm-trunk", "vm-a20", "vm-b30"] {
        ok(&ifup(&["--config", &cfg, t]));
    }
    let [mut trunk, mut a20, mut b30] =
        open_ports(["vm-trunk", "vm-a20", "vm-b30"], Duration::from_secs(20));
    let src = [0x52, 0x54, 0, 0, 0, 0x01];
    let wait = Duration::from_secs(2);
    let quiet = Duration::from_millis(500);

    let m = b"qemu-ifup-rs vlan probe: trunk tagged 20";
    trunk.send(&tapio::ethernet_tagged(BROADCAST, src, 20, ETH_P_TEST, m));
    let got = a20
        .recv_matching(wait, |f| tapio::contains(f, m))
        .expect("the VLAN 20 access port did not get the trunk's VLAN 20 frame");
    assert_eq!(tapio::vlan_id(&got), None, "access ports send untagged");
    assert_eq!(tapio::ethertype(&got), ETH_P_TEST);
    assert!(
        b30.recv_matching(quiet, |f| tapio::contains(f, m))
            .is_none(),
        "VLAN 20 leaked to the VLAN 30 access port"
    );

    let m = b"qemu-ifup-rs vlan probe: access 20 untagged";
    let src20 = [0x52, 0x54, 0, 0, 0, 0x20];
    a20.send(&tapio::ethernet(BROADCAST, src20, ETH_P_TEST, m));
    let got = trunk
        .recv_matching(wait, |f| tapio::contains(f, m))
        .expect("the trunk did not get the access port's frame");
    assert_eq!(
        tapio::vlan_id(&got),
        Some(20),
        "the trunk carries it tagged 20"
    );
    assert!(b30
        .recv_matching(quiet, |f| tapio::contains(f, m))
        .is_none());

    let m = b"qemu-ifup-rs vlan probe: trunk tagged 30";
    trunk.send(&tapio::ethernet_tagged(BROADCAST, src, 30, ETH_P_TEST, m));
    let got = b30
        .recv_matching(wait, |f| tapio::contains(f, m))
        .expect("the VLAN 30 access port did not get the trunk's VLAN 30 frame");
    assert_eq!(tapio::vlan_id(&got), None);
    assert!(a20
        .recv_matching(quiet, |f| tapio::contains(f, m))
        .is_none());

    let m = b"qemu-ifup-rs vlan probe: trunk untagged";
    trunk.send(&tapio::ethernet(BROADCAST, src, ETH_P_TEST, m));
    assert!(a20
        .recv_matching(quiet, |f| tapio::contains(f, m))
        .is_none());
    assert!(b30
        .recv_matching(quiet, |f| tapio::contains(f, m))
        .is_none());
}

/// With br_netfilter's `bridge-nf-call-iptables` on in the bridge's namespace, qemu-ifup attaches
/// the tap and warns (exit 0); with it off, no warning.
fn nf_call_iptables_warning() {
    let _ns = netns();
    add_vlan_bridge("br0", None);
    tap("vmtap0");
    tap("vmtap1");
    let cfg = config("nf_call", "bridge br0\n");
    std::fs::write(NF_SYSCTL, "1").unwrap();
    let out = ifup(&["--config", &cfg, "vmtap0"]);
    out.assert_success();
    assert_up_on("vmtap0", "br0");
    let warnings = warnings(&out);
    assert_eq!(warnings.len(), 1, "{out:#?}");
    assert!(
        warnings[0].contains("bridge-nf-call-iptables") && warnings[0].contains("br0"),
        "{out:#?}"
    );
    std::fs::write(NF_SYSCTL, "0").unwrap();
    let out = ifup(&["--config", &cfg, "vmtap1"]);
    out.assert_success();
    assert_eq!(out.stderr, "", "{out:#?}");
}
