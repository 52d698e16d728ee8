//! libvirt's system instance (`qemu:///system`) running our helpers as the `<script>` and
//! `<downscript>` of `<interface type='ethernet'>`, as docs/GUIDE.md ("libvirt") tells the
//! admin to: the guide's interface XML and rule, verbatim, on real TCG guests, and the guide's
//! claims about what libvirt does around the scripts.
//!
//! Each test runs in its own network namespace ([`Netns`]) with a private system libvirtd of its
//! own ([`Libvirtd::system`]: root, its own mount and pid namespaces, our binaries as
//! `/usr/libexec/qemu-ifup-rs` and `/usr/libexec/qemu-ifdown-rs` and the test's
//! `/etc/qemu-ifup-rs.conf` only there). Needs root, qemu-system-x86, busybox-static,
//! linux-image-amd64, util-linux, libvirt-daemon, libvirt-daemon-driver-qemu and libvirt-clients
//! (`scripts/deps.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ifup_testkit::libvirt::{Domain, Libvirtd, SystemConfig};
use ifup_testkit::{
    add_bridge, del_link, expect_link, ip, link, links, marker, ports, taps, wait_until,
    GuestImage, Link, Netns, NicModel, CLEAN_PATH, QEMU_TIMEOUT,
};

const IFUP: &str = env!("CARGO_BIN_EXE_qemu-ifup");
const IFDOWN: &str = env!("CARGO_BIN_EXE_qemu-ifdown");
const BR: &str = "br0";
/// br0's MTU, not the tap's default, so that the tap taking it shows.
const BR_MTU: u32 = 1400;
const HOST_IP: &str = "10.0.2.1";
const GUEST_IP: &str = "10.0.2.15/24";
/// The guide's rule (its `conf` block), with a port option this host's kernel has (it has no
/// bridge VLAN filtering).
const GUIDE_RULE: &str = "tap vm-web*  bridge br0 isolated on\n";
/// The guide's guest MAC, and libvirt's MAC for its tap.
const GUIDE_MAC: &str = "52:54:00:3c:5e:01";
const GUIDE_TAP_MAC: &str = "fe:54:00:3c:5e:01";

fn tmp() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

fn image() -> GuestImage {
    GuestImage::get(tmp())
}

fn guide() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/GUIDE.md")).unwrap()
}

/// A fresh namespace with br0 (MTU 1400, the host's address) and a system libvirtd whose
/// `/etc/qemu-ifup-rs.conf` is `rules`, its configuration passed through `config` first.
fn world(config: impl FnOnce(SystemConfig) -> SystemConfig, rules: &str) -> (Netns, Libvirtd) {
    let ns = Netns::new();
    add_bridge(BR, Some(BR_MTU));
    ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", BR]);
    let lv = Libvirtd::system(config(SystemConfig::new(
        Path::new(IFUP),
        Path::new(IFDOWN),
        rules,
    )));
    (ns, lv)
}

/// `tap` as the guide's rule leaves it: on br0 alone, with br0's MTU, isolated, up, the MAC
/// libvirt gave it (`mac`), a tap libvirt holds (not persistent).
#[track_caller]
fn assert_attached_by_rule(tap: &str, mac: &str) -> Link {
    let l = expect_link(tap);
    assert_eq!(l.master.as_deref(), Some(BR), "{l:#?}");
    assert_eq!(ports(BR), [tap], "{tap} alone on {BR}");
    assert_eq!(l.mtu, BR_MTU, "the tap takes the bridge's MTU: {l:#?}");
    assert!(l.up, "{l:#?}");
    assert!(
        l.bridge_port.as_ref().unwrap().isolated,
        "the rule's `isolated on`: {l:#?}"
    );
    assert_eq!(l.address.as_deref(), Some(mac), "{l:#?}");
    let tun = l.tun.as_ref().unwrap();
    assert!(tun.tap && !tun.persist, "{l:#?}");
    l
}

/// Waits until domain `name` is gone and its tap with it; nothing is left on br0.
fn assert_all_gone(lv: &Libvirtd, name: &str, tap: &str) {
    lv.wait_gone(name, QEMU_TIMEOUT);
    wait_until(Duration::from_secs(10), "the tap to go", || {
        link(tap).is_none().then_some(())
    });
    assert_eq!(taps(), Vec::<Link>::new());
    assert_eq!(ports(BR), Vec::<String>::new(), "ports left on {BR}");
}

/// The guide's `<interface type='ethernet'>` and `tap vm-web*` rule, as written: `virsh create`
/// returns with vm-web0 already on br0 (libvirt runs the script before QEMU starts) with the
/// rule's `isolated on`, br0's MTU and libvirt's MAC (`tap-mac fe` leaves it); the guest pings
/// the host on br0; after `virsh destroy` the tap is gone and br0 has no port.
#[test]
fn guide_interface_attaches_vm_web0_to_br0() {
    let (_ns, lv) = world(|c| c, GUIDE_RULE);
    let domain = Domain::ethernet("web0", &image(), "vm-web0", NicModel::VirtioNetPci)
        .mac(GUIDE_MAC)
        .guest_ip(GUEST_IP)
        .ping(HOST_IP)
        .hold();
    let guide = guide();
    for block in [
        format!("```xml\n{}```\n", domain.interface_xml()),
        format!("```conf\n{GUIDE_RULE}```\n"),
    ] {
        assert!(guide.contains(&block), "the guide lacks\n{block}");
    }

    let out = lv.create(&domain);
    assert_eq!(out.code, 0, "virsh create: {out:#?}\n{}", lv.report("web0"));
    let tap = assert_attached_by_rule("vm-web0", GUIDE_TAP_MAC);
    assert!(
        tap.tun.as_ref().unwrap().vnet_hdr,
        "libvirt opens a virtio NIC's tap with a vnet header: {tap:#?}"
    );
    lv.assert_pinged("web0", None);
    lv.wait_console("web0", &[marker::HOLD], QEMU_TIMEOUT);
    assert_eq!(lv.running(), ["web0"]);

    lv.virsh_ok(&["destroy", "web0"]);
    assert_all_gone(&lv, "web0", "vm-web0");
}

/// A guest MAC starting with `fe` (an e1000 NIC): libvirt gives the tap `fa:…`, and the helper
/// (`tap-mac fe` by default) leaves it, so the tap never takes the guest's own MAC; the guest
/// pings the host and powers off, which ends the domain and the tap.
#[test]
fn fe_guest_mac_keeps_libvirts_fa_tap_mac() {
    let (_ns, lv) = world(|c| c, GUIDE_RULE);
    let guest_mac = "fe:54:00:3c:5e:02";
    let domain = Domain::ethernet("web-fe", &image(), "vm-web1", NicModel::E1000)
        .mac(guest_mac)
        .guest_ip(GUEST_IP)
        .ping(HOST_IP);
    let out = lv.create(&domain);
    assert_eq!(
        out.code,
        0,
        "virsh create: {out:#?}\n{}",
        lv.report("web-fe")
    );
    let tap = assert_attached_by_rule("vm-web1", "fa:54:00:3c:5e:02");
    assert_ne!(tap.address.as_deref(), Some(guest_mac));
    assert!(
        !tap.tun.as_ref().unwrap().vnet_hdr,
        "no vnet header for e1000: {tap:#?}"
    );
    lv.assert_pinged("web-fe", None);
    assert_all_gone(&lv, "web-fe", "vm-web1");
}

/// A `<script>`/`<downscript>` pair that records what it was given into
/// `/run/.ifup-testkit/probe-{up,down}` (its argv, uid, the environment it was started with, the
/// tap as it is then, whether QEMU runs yet), then runs our helper; the downscript then fails.
const PROBE: &str = r#"#!/bin/sh
# Installed as ifup-testkit-probe-up and ifup-testkit-probe-down.
kind=${0##*-}
out=/run/.ifup-testkit/probe-$kind
{
    echo "argv: $*"
    echo "uid: $(id -u)"
    tr '\0' '\n' < /proc/$$/environ | sed 's/^/env: /'
    echo "qemu: $(cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^qemu-system')"
    net=/sys/class/net/$1
    if [ -e "$net" ]; then
        echo "flags: $(cat "$net/flags")"
        echo "address: $(cat "$net/address")"
        echo "mtu: $(cat "$net/mtu")"
        echo "master: $([ -e "$net/master" ] && basename "$(readlink "$net/master")")"
    else
        echo "tap: gone"
    fi
} > "$out" 2>&1
if [ "$kind" = up ]; then
    exec /usr/libexec/qemu-ifup-rs "$@"
fi
/usr/libexec/qemu-ifdown-rs "$@"
echo "ifdown: $?" >> "$out"
exit 1
"#;

/// What a probe recorded: `key: value` lines (the environment under `env`, one value a
/// variable, sorted).
fn probe_record(lv: &Libvirtd, kind: &str) -> BTreeMap<String, Vec<String>> {
    let path = format!("/run/.ifup-testkit/probe-{kind}");
    let text = lv
        .read(&path)
        .unwrap_or_else(|| panic!("the {kind} probe did not run\n{}", lv.libvirtd_log()));
    let mut record: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let (key, value) = line
            .split_once(": ")
            .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
            .unwrap_or_else(|| panic!("{path}: {line:?}\n{text}"));
        record
            .entry(key.to_owned())
            .or_default()
            .push(value.to_owned());
    }
    record.values_mut().for_each(|v| v.sort());
    record
}

/// The guide's claims about the scripts' surroundings, measured by a probe that runs before our
/// helper: libvirt runs the script as root with the tap's name as the only argument, the tap
/// up with libvirt's MAC, on no bridge and at the default MTU, before QEMU runs; in an
/// environment of libvirt's making: `LC_ALL=C` and, of libvirtd's own variables, only `PATH`,
/// `HOME`, `USER`, `LOGNAME`, `TMPDIR`, `LD_PRELOAD` and `LD_LIBRARY_PATH` (libvirtd here also
/// has `LANG`, `TERM` and a `QEMU_IFUP_CONFIG` whose rule would pick br-other: the tap goes to
/// br0, by `/etc/qemu-ifup-rs.conf`). The downscript runs once the tap is gone, and its failure
/// does not stop `virsh destroy`.
#[test]
fn scripts_get_libvirts_environment_not_the_daemons() {
    const OTHER: &str = "/etc/qemu-ifup-other.conf";
    let daemon_env = [
        ("QEMU_IFUP_CONFIG", OTHER),
        ("LANG", "C.UTF-8"),
        ("TERM", "dumb"),
        ("USER", "root"),
        ("LOGNAME", "root"),
        ("TMPDIR", "/tmp"),
        ("LD_LIBRARY_PATH", "/nonexistent"),
        ("LD_PRELOAD", ""),
    ];
    let (_ns, lv) = world(
        |c| daemon_env.iter().fold(c, |c, (k, v)| c.env(k, v)),
        GUIDE_RULE,
    );
    add_bridge("br-other", None);
    lv.write_file(OTHER, "tap vm-web* bridge br-other\n", 0o644);
    for kind in ["up", "down"] {
        lv.write_file(
            &format!("/usr/libexec/ifup-testkit-probe-{kind}"),
            PROBE,
            0o755,
        );
    }
    let domain = Domain::ethernet("web-env", &image(), "vm-web2", NicModel::VirtioNetPci)
        .mac("52:54:00:3c:5e:03")
        .scripts(
            "/usr/libexec/ifup-testkit-probe-up",
            "/usr/libexec/ifup-testkit-probe-down",
        );
    let out = lv.create(&domain);
    assert_eq!(
        out.code,
        0,
        "virsh create: {out:#?}\n{}",
        lv.report("web-env")
    );
    assert_attached_by_rule("vm-web2", "fe:54:00:3c:5e:03");
    assert_eq!(ports("br-other"), Vec::<String>::new());

    let path = format!("PATH={CLEAN_PATH}");
    let passed = [
        "HOME=/root",
        "LC_ALL=C",
        "LD_LIBRARY_PATH=/nonexistent",
        "LD_PRELOAD=",
        "LOGNAME=root",
        &path,
        "TMPDIR=/tmp",
        "USER=root",
    ];
    let one = |v: &str| vec![v.to_owned()];
    let up = probe_record(&lv, "up");
    assert_eq!(up["argv"], one("vm-web2"), "{up:#?}");
    assert_eq!(up["uid"], one("0"), "{up:#?}");
    assert_eq!(up["env"], passed, "{up:#?}");
    assert_eq!(up["qemu"], one("0"), "QEMU runs after the script: {up:#?}");
    let flags = u32::from_str_radix(up["flags"][0].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(
        flags & 1,
        1,
        "the tap is up (IFF_UP) when the script runs: {up:#?}"
    );
    assert_eq!(up["address"], one("fe:54:00:3c:5e:03"), "{up:#?}");
    assert_eq!(up["mtu"], one("1500"), "{up:#?}");
    assert_eq!(up["master"], one(""), "{up:#?}");

    lv.virsh_ok(&["destroy", "web-env"]);
    assert_all_gone(&lv, "web-env", "vm-web2");
    let down = probe_record(&lv, "down");
    assert_eq!(down["argv"], one("vm-web2"), "{down:#?}");
    assert_eq!(down["env"], passed, "{down:#?}");
    assert_eq!(down["tap"], one("gone"), "{down:#?}");
    assert_eq!(
        down["ifdown"],
        one("0"),
        "qemu-ifdown: a tap that is gone is success: {down:#?}"
    );
    let log = lv.libvirtd_log();
    assert!(
        log.contains("/usr/libexec/ifup-testkit-probe-down vm-web2) unexpected exit status 1"),
        "libvirt notes the downscript's failure, and goes on: {log}"
    );
}

/// The guide's rule, with no br0: `virsh create` of the guide's domain fails; virsh's error (and
/// libvirtd's log, not QEMU's) is libvirt's "Child process (…) unexpected exit status 1: " and
/// our helper's line, as the guide quotes it; no domain runs and no tap is left.
#[test]
fn missing_bridge_fails_virsh_create_with_our_error() {
    let (_ns, lv) = world(|c| c, GUIDE_RULE);
    del_link(BR);
    let before = links();
    let domain = Domain::ethernet("web0", &image(), "vm-web0", NicModel::VirtioNetPci);
    let out = lv.create(&domain);
    assert_ne!(out.code, 0, "virsh create must fail: {out:#?}");
    let ours = "qemu-ifup: error: tap vm-web0, bridge br0: the bridge does not exist \
                (tap rule \"vm-web*\" at /etc/qemu-ifup-rs.conf:1)";
    let libvirts = format!(
        "error: internal error: Child process (LC_ALL=C PATH={CLEAN_PATH} HOME=/root \
         /usr/libexec/qemu-ifup-rs vm-web0) unexpected exit status 1: {ours}"
    );
    assert!(out.stderr.contains(&format!("{libvirts}\n")), "{out:#?}");
    let block = format!("```text\n{libvirts}\n```\n");
    assert!(guide().contains(&block), "the guide lacks\n{block}");
    assert!(lv.libvirtd_log().contains(ours), "{}", lv.libvirtd_log());
    assert!(
        !lv.domain_log("web0").contains(ours),
        "{}",
        lv.domain_log("web0")
    );
    assert_eq!(lv.running(), Vec::<String>::new());
    assert_eq!(links(), before, "a failed virsh create changed a link");
}
