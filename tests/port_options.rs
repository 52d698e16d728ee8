//! The bridge-port options of the config (`isolated`, `hairpin`, `learning`, `flood`,
//! `tap-mac`, `mtu`) against this machine's kernel, each test in its own network namespace.
//!
//! State is read back with iproute2 (`ip -j -d link show`, `bridge -j`), and behaviour is proven
//! with frames written to and read from the taps as a guest would (ifup_testkit::tapio). The VLAN
//! options need a kernel with bridge VLAN filtering: they are tested in tests/vlan_vm.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{assert_detached, assert_fails, assert_up_on, config, ifup, netns, warnings, IFUP};
use ifup_testkit::bridge_tool::{bridge, learned_macs};
use ifup_testkit::tapio::{self, open_ports, TapQueue, BROADCAST, ETH_P_TEST};
use ifup_testkit::{
    add_bridge, add_tap, add_veth, expect_link, ip, links, set_master, set_up, BridgePort,
    RunOutput,
};

fn ok(out: &RunOutput) {
    out.assert_success();
    assert_eq!(out.stderr, "", "{out:#?}");
}

fn port_flags(tap: &str) -> BridgePort {
    let l = expect_link(tap);
    l.bridge_port
        .clone()
        .unwrap_or_else(|| panic!("{tap} is not a bridge port: {l:#?}"))
}

fn flags(isolated: bool, hairpin: bool, learning: bool, flood: bool) -> BridgePort {
    BridgePort {
        isolated,
        hairpin,
        learning,
        flood,
    }
}

// ---------------------------------------------------------------------------------------------
// Flags read back.

/// Every flag set the non-default way from the `bridge` line.
#[test]
fn flags_from_bridge_line() {
    let _ns = netns();
    add_bridge("br0", None);
    add_tap("vmtap0", None, None);
    let cfg = config(
        "flags_bridge_line",
        "bridge br0 isolated on hairpin on learning off flood off\n",
    );
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    assert_up_on("vmtap0", "br0");
    assert_eq!(port_flags("vmtap0"), flags(true, true, false, false));
    // Idempotent: a second run changes nothing.
    let before = links();
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    assert_eq!(links(), before);
}

/// A tap that is already up joins down (so its port never forwards with the bridge's default
/// settings) and comes up once its options are in; the plan says so.
#[test]
fn up_tap_gets_its_port_options_before_it_forwards() {
    let _ns = netns();
    add_bridge("br0", None);
    add_tap("vmtap0", None, None);
    set_up("vmtap0");
    let cfg = config("flags_up_tap", "bridge br0 isolated on\n");
    let out = ifup(&["--dry-run", "--config", &cfg, "vmtap0"]);
    ok(&out);
    assert!(
        out.stdout
            .contains("set down until the bridge-port options are in place"),
        "{}",
        out.stdout
    );
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    assert_up_on("vmtap0", "br0");
    assert_eq!(port_flags("vmtap0"), flags(true, false, true, true));
}

/// `off`/`on` really set: a tap already on the bridge (down, as a failed earlier run or an
/// admin leaves it) with every flag the other way gets the `tap` rule's values, which win over
/// the `bridge` line's.
#[test]
fn flags_from_tap_rule_override_existing_port_settings() {
    let _ns = netns();
    add_bridge("br0", None);
    add_tap("vm-lab-1", None, None);
    set_master("vm-lab-1", "br0");
    bridge(&[
        "link", "set", "dev", "vm-lab-1", "isolated", "on", "hairpin", "on", "learning", "off",
        "flood", "off",
    ]);
    assert_eq!(port_flags("vm-lab-1"), flags(true, true, false, false));
    let cfg = config(
        "flags_tap_rule",
        "bridge br0 isolated on hairpin on learning off flood off\n\
         tap vm-lab-* bridge br0 isolated off hairpin off learning on flood on\n",
    );
    ok(&ifup(&["--config", &cfg, "vm-lab-1"]));
    assert_up_on("vm-lab-1", "br0");
    assert_eq!(port_flags("vm-lab-1"), flags(false, false, true, true));
}

// ---------------------------------------------------------------------------------------------
// tap-mac and MTU.

/// `tap-mac fe` (the default) changes only the first octet; the bridge then never adopts the
/// tap's MAC. `tap-mac keep` (from a tap rule) leaves it, and shows why: the bridge, whose MAC
/// follows its lowest port MAC, takes the VM's.
#[test]
fn tap_mac_fe_keeps_the_rest_and_the_bridge_mac_stable() {
    let _ns = netns();
    add_bridge("br0", None);
    add_veth("uplink0", "uplink1");
    ip(&["link", "set", "uplink0", "address", "02:00:00:00:00:10"]);
    set_master("uplink0", "br0");
    let bridge_mac = "02:00:00:00:00:10";
    assert_eq!(expect_link("br0").address.as_deref(), Some(bridge_mac));
    add_tap("vmtap0", None, None);
    add_tap("vm-keep", None, None);
    ip(&["link", "set", "vmtap0", "address", "02:00:00:00:00:01"]);
    ip(&["link", "set", "vm-keep", "address", "02:00:00:00:00:02"]);
    let cfg = config(
        "tap_mac",
        "bridge br0\ntap vm-keep bridge br0 tap-mac keep\n",
    );

    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    assert_eq!(
        expect_link("vmtap0").address.as_deref(),
        Some("fe:00:00:00:00:01")
    );
    assert_eq!(expect_link("br0").address.as_deref(), Some(bridge_mac));

    ok(&ifup(&["--config", &cfg, "vm-keep"]));
    assert_eq!(
        expect_link("vm-keep").address.as_deref(),
        Some("02:00:00:00:00:02")
    );
    assert_eq!(
        expect_link("br0").address.as_deref(),
        Some("02:00:00:00:00:02"),
        "with tap-mac keep the bridge adopts the lower MAC of the tap"
    );
}

/// `mtu N` below the bridge's, from the `bridge` line, and `mtu auto` from a tap rule on the
/// same bridge: each tap gets its own, the bridge keeps its MTU.
#[test]
fn mtu_fixed_and_auto_per_rule() {
    let _ns = netns();
    add_bridge("br0", Some(9000));
    add_tap("vmtap0", None, None);
    add_tap("vm-auto", None, None);
    let cfg = config(
        "mtu_rules",
        "bridge br0 mtu 1400\ntap vm-auto bridge br0 mtu auto\n",
    );
    ok(&ifup(&["--config", &cfg, "vmtap0"]));
    ok(&ifup(&["--config", &cfg, "vm-auto"]));
    assert_eq!(expect_link("vmtap0").mtu, 1400);
    assert_eq!(expect_link("vm-auto").mtu, 9000);
    assert_eq!(expect_link("br0").mtu, 9000);
    assert_up_on("vmtap0", "br0");
    assert_up_on("vm-auto", "br0");
}

// ---------------------------------------------------------------------------------------------
// --dry-run and failures.

/// `--dry-run` names every option it would apply, and changes nothing.
#[test]
fn dry_run_lists_every_port_option() {
    let _ns = netns();
    add_bridge("br0", None);
    add_tap("vmtap0", None, None);
    ip(&["link", "set", "vmtap0", "address", "52:54:00:12:34:56"]);
    let cfg = config(
        "dry_run_options",
        "bridge br0 mtu 1400 isolated on hairpin on learning off flood off tap-mac fe\n",
    );
    let before = links();
    let out = ifup(&["--dry-run", "--config", &cfg, "vmtap0"]);
    ok(&out);
    assert_eq!(links(), before);
    for line in [
        "set address fe:54:00:12:34:56",
        "set mtu 1400",
        "attach to bridge br0",
        "set bridge-port isolated on",
        "set bridge-port hairpin on",
        "set bridge-port learning off",
        "set bridge-port flood off",
        "set up",
    ] {
        assert!(
            out.stdout.lines().any(|l| l.trim() == line),
            "{line:?} missing: {}",
            out.stdout
        );
    }
}

/// Whether this kernel can do bridge VLAN filtering (this machine's cannot; Debian's can).
fn kernel_has_bridge_vlan_filtering() -> bool {
    ip(&["link", "add", "br-probe", "type", "bridge"]);
    let out = ifup_testkit::try_ip(&[
        "link",
        "set",
        "br-probe",
        "type",
        "bridge",
        "vlan_filtering",
        "1",
    ]);
    ip(&["link", "del", "br-probe"]);
    out.status.success()
}

/// `vlan`/`tagged` on a bridge without VLAN filtering (from a `tap` rule here; the `bridge`
/// line is in tests/ifup.rs): exit 1, nothing changed, and the message gives the fix — or, on a
/// kernel without bridge VLAN filtering at all, names the missing kernel feature.
#[test]
fn vlan_without_vlan_filtering_fails_and_says_why() {
    let _ns = netns();
    let kernel_can = kernel_has_bridge_vlan_filtering();
    add_bridge("br0", None);
    add_tap("vm-trunk", None, None);
    let cfg = config("vlan_no_filter", "tap vm-* bridge br0 tagged 10,20-29\n");
    let before = links();
    let out = ifup(&["--config", &cfg, "vm-trunk"]);
    if kernel_can {
        assert_fails(
            &out,
            1,
            "qemu-ifup",
            &[
                "vm-trunk",
                "br0",
                "ip link set br0 type bridge vlan_filtering 1",
            ],
        );
    } else {
        assert_fails(
            &out,
            1,
            "qemu-ifup",
            &["vm-trunk", "br0", "CONFIG_BRIDGE_VLAN_FILTERING"],
        );
    }
    assert_eq!(links(), before);
    assert_detached("vm-trunk");
}

/// A bridge-port step that fails after the tap was attached (the fourth netlink request, the
/// `AF_BRIDGE` one, made to fail with EOPNOTSUPP by strace's fault injection, since no port
/// flag is refused by the kernel for a fresh port): qemu-ifup undoes the attach — the tap ends
/// detached, down, with its MTU and MAC back — and exits 1 naming the step.
#[test]
fn port_option_failure_after_attach_is_undone() {
    let _ns = netns();
    add_bridge("br0", Some(1400));
    add_tap("vmtap0", None, None);
    let before = expect_link("vmtap0");
    let cfg = config("undo_port", "bridge br0 isolated on\n");
    let strace = ["/usr/bin/strace", "/bin/strace"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("this test injects a netlink failure with strace: apt-get install strace");
    let out = Command::new(strace)
        .args([
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=sendto",
            "-e",
            "inject=sendto:error=EOPNOTSUPP:when=4",
            IFUP,
            "--config",
            &cfg,
            "vmtap0",
        ])
        .env_clear()
        .env("PATH", ifup_testkit::CLEAN_PATH)
        .output()
        .unwrap();
    let out = RunOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_fails(
        &out,
        1,
        "qemu-ifup",
        &[
            "vmtap0",
            "br0",
            "setting bridge-port options",
            "not supported",
        ],
    );
    let after = expect_link("vmtap0");
    assert_eq!(after.master, None, "{after:#?}");
    assert!(!after.up, "{after:#?}");
    assert_eq!(after.mtu, before.mtu, "{after:#?}");
    assert_eq!(after.address, before.address, "{after:#?}");
    assert!(
        ip(&["-o", "link", "show", "master", "br0"])
            .trim()
            .is_empty(),
        "br0 should have no port left"
    );
}

// ---------------------------------------------------------------------------------------------
// Behaviour, with frames.

const WAIT: Duration = Duration::from_secs(2);
/// How long a frame that must not arrive is waited for. Forwarding is synchronous with the
/// write (the bridge handles the frame in the writer's softirq), so this is generous.
const QUIET: Duration = Duration::from_millis(300);

fn mac(last: u8) -> [u8; 6] {
    [0x52, 0x54, 0, 0, 0, last]
}

/// How long [`open_ports`] waits for the bridge to forward on the taps.
const FORWARDING: Duration = Duration::from_secs(10);

/// Two taps attached by qemu-ifup with `isolated` as given, on a bridge with address
/// 10.0.9.1/24. Checks that each tap's ARP request for the bridge's address is answered, and
/// returns whether a broadcast from each tap reached the other.
fn isolation_case(isolated: &str) -> (bool, bool) {
    let _ns = netns();
    add_bridge("br0", None);
    ip(&["addr", "add", "10.0.9.1/24", "dev", "br0"]);
    add_tap("vm-a", None, None);
    add_tap("vm-b", None, None);
    let cfg = config(
        &format!("isolation_{isolated}"),
        &format!("bridge br0 isolated {isolated}\n"),
    );
    for t in ["vm-a", "vm-b"] {
        ok(&ifup(&["--config", &cfg, t]));
        assert_eq!(port_flags(t).isolated, isolated == "on");
    }
    let [mut a, mut b] = open_ports(["vm-a", "vm-b"], FORWARDING);
    let a_to_b = probe_isolation(&mut a, &mut b, mac(0xa), [10, 0, 9, 11]);
    let b_to_a = probe_isolation(&mut b, &mut a, mac(0xb), [10, 0, 9, 12]);
    (a_to_b, b_to_a)
}

/// Sends a broadcast from `from` (as `src`), then asks (ARP) for the bridge's address 10.0.9.1
/// and asserts the answer. Returns whether the broadcast reached `to`. The ARP reply also shows
/// that the bridge has handled the broadcast, which was sent first.
fn probe_isolation(from: &mut TapQueue, to: &mut TapQueue, src: [u8; 6], src_ip: [u8; 4]) -> bool {
    let bridge_ip = [10, 0, 9, 1];
    let probe = format!("qemu-ifup-rs isolation probe from {}", from.name());
    from.send(&tapio::ethernet(
        BROADCAST,
        src,
        ETH_P_TEST,
        probe.as_bytes(),
    ));
    from.send(&tapio::arp_request(src, src_ip, bridge_ip));
    assert!(
        from.recv_matching(WAIT, |f| tapio::is_arp_reply(f, bridge_ip, src))
            .is_some(),
        "{}: no ARP reply from the bridge's address 10.0.9.1",
        from.name()
    );
    to.recv_matching(QUIET, |f| tapio::contains(f, probe.as_bytes()))
        .is_some()
}

/// The acceptance test of isolation: two taps attached with `isolated on` cannot exchange a
/// frame (a broadcast from either does not reach the other), while each still reaches the
/// bridge's own address (ARP for it is answered).
#[test]
fn isolated_taps_cannot_exchange_frames_but_reach_the_bridge() {
    assert_eq!(
        isolation_case("on"),
        (false, false),
        "isolated ports exchanged a frame"
    );
}

/// The control: the same set-up with `isolated off` does pass the frames.
#[test]
fn non_isolated_taps_exchange_frames() {
    assert_eq!(isolation_case("off"), (true, true));
}

/// `hairpin on` sends a broadcast back out of the port it came in by; `hairpin off` does not.
#[test]
fn hairpin_reflects_frames_back() {
    let _ns = netns();
    add_bridge("br0", None);
    add_tap("vm-hp", None, None);
    add_tap("vm-nohp", None, None);
    let cfg = config(
        "hairpin_traffic",
        "tap vm-hp bridge br0 hairpin on\ntap vm-nohp bridge br0 hairpin off\n",
    );
    for t in ["vm-hp", "vm-nohp"] {
        ok(&ifup(&["--config", &cfg, t]));
    }
    assert!(port_flags("vm-hp").hairpin);
    assert!(!port_flags("vm-nohp").hairpin);
    let [mut hp, mut nohp] = open_ports(["vm-hp", "vm-nohp"], FORWARDING);
    let probe = b"qemu-ifup-rs hairpin probe";
    hp.send(&tapio::ethernet(BROADCAST, mac(1), ETH_P_TEST, probe));
    assert!(
        hp.recv_matching(WAIT, |f| tapio::contains(f, probe))
            .is_some(),
        "hairpin on: the broadcast did not come back"
    );
    let probe = b"qemu-ifup-rs no-hairpin probe";
    nohp.send(&tapio::ethernet(BROADCAST, mac(2), ETH_P_TEST, probe));
    assert!(
        hp.recv_matching(WAIT, |f| tapio::contains(f, probe))
            .is_some(),
        "the other port gets it"
    );
    assert!(
        nohp.recv_matching(QUIET, |f| tapio::contains(f, probe))
            .is_none(),
        "hairpin off: the broadcast came back"
    );
}

/// `learning off`: the bridge learns no address on the port; `learning on`: it does.
/// `flood off`: the port gets no unknown-unicast frames; `flood on`: it does.
#[test]
fn learning_and_flood_off_with_traffic() {
    let _ns = netns();
    add_bridge("br0", None);
    for t in ["vm-nolearn", "vm-learn", "vm-noflood"] {
        add_tap(t, None, None);
    }
    let cfg = config(
        "learning_flood_traffic",
        "bridge br0\n\
         tap vm-nolearn bridge br0 learning off\n\
         tap vm-noflood bridge br0 flood off\n",
    );
    for t in ["vm-nolearn", "vm-learn", "vm-noflood"] {
        ok(&ifup(&["--config", &cfg, t]));
    }
    assert_eq!(port_flags("vm-nolearn"), flags(false, false, false, true));
    assert_eq!(port_flags("vm-learn"), flags(false, false, true, true));
    assert_eq!(port_flags("vm-noflood"), flags(false, false, true, false));
    let [mut nolearn, mut learn, mut noflood] =
        open_ports(["vm-nolearn", "vm-learn", "vm-noflood"], FORWARDING);

    // Unicast to an address nobody has: flooded to vm-learn (flood on) but not vm-noflood.
    let unknown = [0x52, 0x54, 0, 0, 0, 0xee];
    let probe = b"qemu-ifup-rs unknown unicast probe";
    nolearn.send(&tapio::ethernet(unknown, mac(0x11), ETH_P_TEST, probe));
    assert!(
        learn
            .recv_matching(WAIT, |f| tapio::contains(f, probe))
            .is_some(),
        "flood on: the unknown unicast was not flooded"
    );
    assert!(
        noflood
            .recv_matching(QUIET, |f| tapio::contains(f, probe))
            .is_none(),
        "flood off: the port got an unknown unicast"
    );
    learn.send(&tapio::ethernet(unknown, mac(0x22), ETH_P_TEST, probe));
    assert!(nolearn
        .recv_matching(WAIT, |f| tapio::contains(f, probe))
        .is_some());

    let learned_on = |dev: &str, m: &str| learned_macs(dev).iter().any(|x| x == m);
    assert!(
        learned_on("vm-learn", "52:54:00:00:00:22"),
        "learning on: {:?}",
        learned_macs("vm-learn")
    );
    assert!(
        !learned_on("vm-nolearn", "52:54:00:00:00:11"),
        "learning off, yet learned: {:?}",
        learned_macs("vm-nolearn")
    );
}

// ---------------------------------------------------------------------------------------------
// Warnings.

/// A bridge running STP with a forward delay: qemu-ifup attaches the tap (exit 0) and warns,
/// once, naming the bridge and the delay.
#[test]
fn stp_forward_delay_warns_and_attaches() {
    let _ns = netns();
    ip(&[
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "stp_state",
        "1",
        "forward_delay",
        "400",
    ]);
    set_up("br0");
    add_tap("vmtap0", None, None);
    let cfg = config("stp_warning", "bridge br0\n");
    let out = ifup(&["--config", &cfg, "vmtap0"]);
    out.assert_success();
    assert_up_on("vmtap0", "br0");
    let warnings = warnings(&out);
    assert_eq!(warnings.len(), 1, "one warning expected: {out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
    for w in ["br0", "STP", "forward delay of 4 s"] {
        assert!(warnings[0].contains(w), "{w:?} missing: {out:#?}");
    }
}

/// Finding 6 of the security review: a bridge whose MAC the admin did not set takes the lowest
/// MAC of its ports (a tap's, which the tap's owner can change): warned about, with the fix.
/// Run with a sysfs of the test's namespace, where `addr_assign_type` is.
#[test]
fn a_bridge_mac_the_admin_did_not_set_is_warned_about() {
    let _ns = netns();
    add_bridge("br0", None);
    ip(&[
        "link",
        "add",
        "br1",
        "address",
        "02:00:00:00:01:01",
        "type",
        "bridge",
    ]);
    set_up("br1");
    add_bridge("br2", None);
    ip(&["link", "set", "br2", "address", "02:00:00:00:02:02"]);
    add_tap("vmtap0", None, None);
    add_tap("vmtap1", None, None);
    add_tap("vmtap2", None, None);
    let up = |tap: &str, bridge: &str| {
        let cfg = config(
            &format!("mac_warning_{bridge}"),
            &format!("bridge {bridge}\n"),
        );
        ifup_testkit::run_with_own_sysfs(Path::new(IFUP), &["--config", &cfg, tap])
    };
    // Random MAC (addr_assign_type 1): warned, with the bridge's MAC as it was to pin.
    let mac = expect_link("br0").address.unwrap();
    let out = up("vmtap0", "br0");
    out.assert_success();
    assert_up_on("vmtap0", "br0");
    let w = warnings(&out);
    assert_eq!(w.len(), 1, "{out:#?}");
    // What it warns of: its only port is the tap, and the bridge took the tap's MAC.
    assert_eq!(expect_link("br0").address, expect_link("vmtap0").address);
    for word in [
        "bridge br0",
        "MAC address was not set by the admin",
        &format!("ip link set br0 address {mac}"),
    ] {
        assert!(w[0].contains(word), "{word:?} missing: {out:#?}");
    }
    // Set at creation, or afterwards (addr_assign_type 3): no warning.
    for (tap, bridge) in [("vmtap1", "br1"), ("vmtap2", "br2")] {
        let out = up(tap, bridge);
        out.assert_success();
        assert_up_on(tap, bridge);
        assert_eq!(warnings(&out), Vec::<&str>::new(), "{bridge}: {out:#?}");
    }
}
