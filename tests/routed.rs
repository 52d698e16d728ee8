//! The linux-kvm.org networking page's other two setups, against the real kernel, each test in
//! its own network namespace: **routed taps** (the host routes the guest's addresses to its tap;
//! `tap GLOB route LIST`) and **private bridges created on first use** (`create-bridge`). Real
//! QEMU guests where it matters: a routed guest reaches the host and a peer behind it; two guests
//! meet on a bridge that did not exist before the first started. Run by root; the privileged-mode
//! cases are in tests/privileged.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{assert_fails, config, ifdown, ifup, IFDOWN, IFUP};
use ifup_testkit::{
    add_tap, add_veth, expect_link, ip, link, links, routes, tap_mac, GuestImage, Netns, Qemu,
    RouteEntry, CLEAN_PATH, QEMU_TIMEOUT,
};

/// A route qemu-ifup adds: to `dst`, via `dev`, protocol 112.
fn ours(dst: &str, dev: &str) -> RouteEntry {
    RouteEntry {
        dst: dst.to_owned(),
        dev: Some(dev.to_owned()),
        protocol: "112".to_owned(),
        kind: "unicast".to_owned(),
    }
}

/// Whether `r` goes via `dev`.
fn via(r: &RouteEntry, dev: &str) -> bool {
    r.dev.as_deref() == Some(dev)
}

fn proxy_arp(dev: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{dev}/proxy_arp"))
        .unwrap()
        .trim()
        .to_owned()
}

/// `qemu-ifup` adds one route per destination (IPv4 and IPv6, protocol 112), proxy ARP and up;
/// again, nothing; `qemu-ifdown` removes exactly its own routes (not one an admin added by hand
/// to the same tap) and sets the tap down.
#[test]
fn a_routed_tap_gets_its_routes_and_gives_them_back() {
    let _ns = Netns::new();
    add_tap("vm-web0", None, None);
    let cfg = config(
        "routed_basic",
        "tap vm-web0 route 192.0.2.10,2001:db8::10,198.51.100.0/28 proxy-arp on mtu 1400\n",
    );
    let out = ifup(&["--config", &cfg, "vm-web0"]);
    out.assert_success();
    let t = expect_link("vm-web0");
    assert!(t.up && t.master.is_none(), "{t:#?}");
    assert_eq!(t.mtu, 1400);
    assert!(t.address.as_deref().unwrap().starts_with("fe:"), "{t:#?}");
    assert_eq!(proxy_arp("vm-web0"), "1");
    assert_eq!(
        routes(false),
        [
            ours("192.0.2.10", "vm-web0"),
            ours("198.51.100.0/28", "vm-web0")
        ]
    );
    assert_eq!(routes(true), [ours("2001:db8::10", "vm-web0")]);
    // Forwarding is off in a fresh namespace: warned, for each family in use.
    assert_eq!(common::warnings(&out).len(), 2, "{out:#?}");

    let before = (links(), routes(false), routes(true));
    ifup(&["--config", &cfg, "vm-web0"]).assert_success();
    assert_eq!((links(), routes(false), routes(true)), before);

    ip(&["route", "add", "203.0.113.7", "dev", "vm-web0"]);
    let out = ifdown(&["--dry-run", "vm-web0"]);
    assert!(out.stdout.contains("remove route 192.0.2.10"), "{out:#?}");
    assert!(out.stdout.contains("remove route 2001:db8::10"), "{out:#?}");
    ifdown(&["vm-web0"]).assert_success();
    assert!(!expect_link("vm-web0").up);
    assert!(routes(true).is_empty(), "{:?}", routes(true));
    // The admin's own route: the kernel removes an IPv4 route of a downed device by itself; ours
    // went first, by name. Bring it up again: it is not ours to remove.
    assert!(
        routes(false).iter().all(|r| r.protocol != "112"),
        "{:?}",
        routes(false)
    );
    // Again: nothing to do, success.
    ifdown(&["vm-web0"]).assert_success();
    ifdown(&["no-such-tap"]).assert_success();
}

/// A destination already routed through another device (another VM's tap) is refused, and
/// nothing changes: neither the other route nor this tap.
#[test]
fn an_address_routed_elsewhere_is_not_taken() {
    let _ns = Netns::new();
    add_tap("vm-a", None, None);
    add_tap("vm-b", None, None);
    let cfg = config(
        "routed_conflict",
        "tap vm-a route 192.0.2.10\ntap vm-b route 192.0.2.11,192.0.2.10\n",
    );
    ifup(&["--config", &cfg, "vm-a"]).assert_success();
    let before = (links(), routes(false));
    let out = ifup(&["--config", &cfg, "vm-b"]);
    assert_fails(
        &out,
        1,
        "qemu-ifup",
        &[
            "tap vm-b",
            "192.0.2.10 is already routed via vm-a",
            "refusing",
        ],
    );
    assert_eq!((links(), routes(false)), before);
    // A blackhole counts as taken too.
    ip(&["route", "add", "blackhole", "192.0.2.11"]);
    let cfg = config("routed_blackhole", "tap vm-b route 192.0.2.11\n");
    let out = ifup(&["--config", &cfg, "vm-b"]);
    assert_fails(
        &out,
        1,
        "qemu-ifup",
        &["192.0.2.11 is already routed via no device"],
    );
}

/// Fifty `qemu-ifup` at once, each for its own tap, for a bridge the config declares and that
/// does not exist: all succeed, and all fifty taps end up on the one bridge, which has its
/// declared address (once), MAC, STP off and forward delay 0.
#[test]
fn fifty_first_starts_at_once_make_one_bridge() {
    let _ns = Netns::new();
    let cfg = config(
        "create_bridge_50",
        "create-bridge br-priv address 10.10.0.1/24\ntap vm* bridge br-priv\n",
    );
    let taps: Vec<String> = (0..50).map(|i| format!("vm{i}")).collect();
    for t in &taps {
        add_tap(t, None, None);
    }
    // Spawned from this thread, so each process is in the test's namespace.
    let children: Vec<(String, Child)> = taps
        .iter()
        .map(|t| {
            let child = Command::new(IFUP)
                .args(["--config", &cfg, t])
                .env_clear()
                .env("PATH", CLEAN_PATH)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (t.clone(), child)
        })
        .collect();
    for (t, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{t}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bridges: Vec<_> = links()
        .into_iter()
        .filter(|l| l.kind.as_deref() == Some("bridge"))
        .collect();
    assert_eq!(bridges.len(), 1, "{bridges:#?}");
    assert_eq!(bridges[0].name, "br-priv");
    assert!(
        bridges[0].address.as_deref().unwrap().starts_with("02:"),
        "{bridges:#?}"
    );
    for t in &taps {
        assert_eq!(expect_link(t).master.as_deref(), Some("br-priv"), "{t}");
    }
    let addrs = ip(&["-o", "-4", "addr", "show", "dev", "br-priv"]);
    assert_eq!(addrs.matches("10.10.0.1/24").count(), 1, "{addrs}");
    let details = ip(&["-d", "link", "show", "br-priv"]);
    assert!(
        details.contains("stp_state 0") && details.contains("forward_delay 0"),
        "{details}"
    );
    // qemu-ifdown never deletes the bridge.
    for t in &taps {
        ifdown(&[t]).assert_success();
    }
    assert!(link("br-priv").is_some());
}

/// A device of the declared name that is not a bridge is an error; nothing is created.
#[test]
fn a_declared_bridge_name_taken_by_another_device_is_an_error() {
    let _ns = Netns::new();
    add_veth("br-priv", "peer0");
    add_tap("vm0", None, None);
    let cfg = config(
        "create_bridge_taken",
        "create-bridge br-priv\ntap vm* bridge br-priv\n",
    );
    let before = links();
    let out = ifup(&["--config", &cfg, "vm0"]);
    assert_fails(
        &out,
        1,
        "qemu-ifup",
        &["bridge br-priv", "a veth device, not a bridge"],
    );
    assert_eq!(links(), before);
}

// ---------------------------------------------------------------------------------------------
// Real guests.

fn guest_image() -> GuestImage {
    GuestImage::get(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// A peer host in a network namespace of its own, behind the test's namespace: reached only
/// through the host's routing. Killed (and its namespace gone) on drop.
struct Peer(Child);

impl Peer {
    /// `host_dev` (in the test's namespace, `host_addr`) and the peer's `peer_addr`, default
    /// route via the host.
    fn new(host_dev: &str, host_addr: &str, peer_addr: &str, via: &str) -> Peer {
        let child = Command::new("unshare")
            .args(["--net", "--", "sleep", "600"])
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        // Wait for the child to be in its own namespace.
        let mine = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        ifup_testkit::wait_until(
            std::time::Duration::from_secs(10),
            "the peer's namespace",
            || {
                let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
                (theirs != mine).then_some(())
            },
        );
        ip(&[
            "link", "add", host_dev, "type", "veth", "peer", "name", "peer0", "netns", &pid,
        ]);
        ip(&["addr", "add", host_addr, "dev", host_dev]);
        ip(&["link", "set", host_dev, "up"]);
        let inside = |args: &[&str]| {
            let out = Command::new("nsenter")
                .args(["-t", &pid, "-n", "ip"])
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        inside(&["link", "set", "lo", "up"]);
        inside(&["addr", "add", peer_addr, "dev", "peer0"]);
        inside(&["link", "set", "peer0", "up"]);
        inside(&["route", "add", "default", "via", via]);
        Peer(child)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The seed's "Routing" setup: the guest has 10.0.5.2 and, over IPv6, 2001:db8::10; the host
/// routes them to its tap (`tap vm-r0 route 10.0.5.2,2001:db8::10`). The guest uses the host as
/// its gateway (IPv4: a host address; IPv6: the tap's link-local address) and pings the host and
/// a peer that only the host's routing reaches. While it runs the routes point at its tap; after
/// QEMU quits they are gone and the tap is down. A second tap claiming 10.0.5.2 meanwhile is
/// refused and the first one's route stays.
#[test]
fn a_routed_guest_reaches_the_host_and_beyond() {
    let _ns = Netns::new();
    ip(&["addr", "add", "10.0.9.1/32", "dev", "lo"]);
    ip(&["addr", "add", "fd00:9::1/128", "dev", "lo"]);
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let _peer = Peer::new("vh0", "10.0.8.1/24", "10.0.8.2/24", "10.0.8.1");
    add_tap("vm-r0", None, None);
    add_tap("vm-r1", None, None);
    let cfg = config(
        "routed_guest",
        "tap vm-r0 route 10.0.5.2,2001:db8::10\ntap vm-r1 route 10.0.5.2\n",
    );
    // The tap's link-local address, from the MAC qemu-ifup will give it (fe + the rest).
    let mac: Vec<u8> = tap_mac("vm-r0")
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    let ll = format!(
        "fe80::fc{:02x}:{:02x}ff:fe{:02x}:{:02x}{:02x}",
        mac[1], mac[2], mac[3], mac[4], mac[5]
    );
    let (up, down) = ifup_testkit::bins::helper_bins(IFUP, IFDOWN);
    let mut vm = Qemu::options(&guest_image(), "vm-r0")
        .script(&up)
        .downscript(&down)
        .env("QEMU_IFUP_CONFIG", &cfg)
        .guest_ip("10.0.5.2/32")
        .append("ifup_rs.gw=10.0.9.1")
        .append("ifup_rs.ip6=2001:db8::10/128")
        .append(&format!("ifup_rs.gw6={ll}"))
        .ping("10.0.9.1,10.0.8.2,fd00:9::1")
        .spawn();
    for target in ["10.0.9.1", "10.0.8.2", "fd00:9::1"] {
        vm.assert_pinged(Some(target));
    }
    assert_eq!(
        routes(false).iter().filter(|r| via(r, "vm-r0")).count(),
        1,
        "{:?}",
        routes(false)
    );
    assert!(routes(false).contains(&ours("10.0.5.2", "vm-r0")));
    assert!(routes(true).contains(&ours("2001:db8::10", "vm-r0")));
    // Another tap claiming the running guest's address.
    let out = ifup(&["--config", &cfg, "vm-r1"]);
    assert_fails(
        &out,
        1,
        "qemu-ifup",
        &["10.0.5.2 is already routed via vm-r0"],
    );
    assert!(routes(false).contains(&ours("10.0.5.2", "vm-r0")));
    let exit = vm.wait_exit(QEMU_TIMEOUT);
    assert_eq!(exit.code, 0, "{exit:#?}");
    assert!(
        !routes(false).iter().any(|r| via(r, "vm-r0")),
        "{:?}",
        routes(false)
    );
    assert!(
        !routes(true).iter().any(|r| via(r, "vm-r0")),
        "{:?}",
        routes(true)
    );
    assert!(!expect_link("vm-r0").up);
}

/// The seed's "private virtual bridge", without the set-up step: two guests whose rule names a
/// bridge the config declares; the first start creates it (with the host's address 10.10.0.1),
/// both guests ping each other and the bridge's address.
#[test]
fn two_guests_meet_on_a_bridge_created_on_first_use() {
    let _ns = Netns::new();
    add_tap("vm-p0", None, None);
    add_tap("vm-p1", None, None);
    let cfg = config(
        "private_guests",
        "create-bridge br-priv address 10.10.0.1/24\ntap vm-p* bridge br-priv\n",
    );
    assert!(link("br-priv").is_none());
    let (up, down) = ifup_testkit::bins::helper_bins(IFUP, IFDOWN);
    let image = guest_image();
    let start = |tap: &str, ip: &str, peer: &str, mac: &str| {
        Qemu::options(&image, tap)
            .guest_mac(mac)
            .script(&up)
            .downscript(&down)
            .env("QEMU_IFUP_CONFIG", &cfg)
            .guest_ip(ip)
            .ping(&format!("10.10.0.1,{peer}"))
            .hold()
            .spawn()
    };
    let mut a = start("vm-p0", "10.10.0.10/24", "10.10.0.11", "52:54:00:00:0a:10");
    let mut b = start("vm-p1", "10.10.0.11/24", "10.10.0.10", "52:54:00:00:0a:11");
    for (vm, peer) in [(&mut a, "10.10.0.11"), (&mut b, "10.10.0.10")] {
        for target in ["10.10.0.1", peer] {
            vm.assert_pinged(Some(target));
        }
    }
    let br = expect_link("br-priv");
    assert!(br.up && br.kind.as_deref() == Some("bridge"), "{br:#?}");
    for t in ["vm-p0", "vm-p1"] {
        assert_eq!(expect_link(t).master.as_deref(), Some("br-priv"));
    }
    drop(a);
    drop(b);
}
