//! The testkit's own checks: namespace isolation and `ip -j` parsing. Needs root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ifup_testkit::*;

#[test]
fn netns_is_fresh_per_test_and_left_on_drop() {
    let host_ns = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    {
        let _ns = Netns::new();
        assert_ne!(
            std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
            host_ns
        );
        let names: Vec<String> = links().into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["lo"]);
        assert!(expect_link("lo").up, "Netns::new brings lo up");
        add_bridge("br0", None);
    }
    assert_eq!(
        std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
        host_ns
    );
}

#[test]
#[should_panic(expected = "call `let _ns = ifup_testkit::Netns::new();` first")]
fn helpers_refuse_the_host_namespace() {
    link("lo");
}

#[test]
fn taps_tuns_veths_and_bridges_parse() {
    let _ns = Netns::new();
    add_bridge("br0", Some(1400));
    // uid 0 / gid 0 resolve to names ("root"), 4242 does not: both spellings of `ip -j`.
    add_tap("tap-owned", Some(0), Some(4242));
    add_tap("tap-plain", None, None);
    add_tun("tun0");
    add_veth("va", "vb");
    set_mtu("tap-owned", 1400);
    set_master("tap-owned", "br0");
    set_up("tap-owned");

    let br = expect_link("br0");
    assert_eq!(
        (br.kind.as_deref(), br.mtu, br.up),
        (Some("bridge"), 1400, true)
    );
    assert_eq!(br.tun, None);

    let tap = expect_link("tap-owned");
    assert_eq!(tap.kind.as_deref(), Some("tun"));
    assert_eq!(tap.master.as_deref(), Some("br0"));
    assert!(tap.up && tap.mtu == 1400 && tap.address.is_some());
    let info = tap.tun.clone().unwrap();
    assert!(info.tap && info.persist && !info.multi_queue);
    assert_eq!((info.owner, info.group), (Some(0), Some(4242)));
    let port = tap.bridge_port.unwrap();
    assert!(!port.isolated && !port.hairpin && port.learning && port.flood);

    let plain = expect_link("tap-plain").tun.unwrap();
    assert_eq!((plain.tap, plain.owner, plain.group), (true, None, None));

    let tun = expect_link("tun0");
    assert_eq!(tun.address, None);
    assert!(!tun.tun.unwrap().tap);

    let veth = expect_link("va");
    assert_eq!(
        (veth.kind.as_deref(), veth.tun, veth.up),
        (Some("veth"), None, false)
    );

    set_nomaster("tap-owned");
    set_down("tap-owned");
    let tap = expect_link("tap-owned");
    assert_eq!((tap.master, tap.up, tap.bridge_port), (None, false, None));
    del_link("tap-owned");
    assert_eq!(link("tap-owned"), None);
}

#[test]
fn default_route_on_a_bridge_without_carrier() {
    let _ns = Netns::new();
    add_bridge_with_default_route("br0", "10.0.2.1/24");
    let route = ip(&["route", "show", "default"]);
    assert!(route.contains("dev br0"), "{route}");
}

#[test]
fn run_clears_the_environment() {
    let out = run(
        std::path::Path::new("/usr/bin/env"),
        &[],
        &[("QEMU_IFUP_CONFIG", "/x")],
    );
    out.assert_success();
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "QEMU_IFUP_CONFIG=/x"]
    );

    let out = run(std::path::Path::new("/bin/sh"), &["-c", "exit 3"], &[]);
    assert_eq!(out.code, 3);
    let out = run_as(
        std::path::Path::new("/usr/bin/id"),
        &["-u"],
        &[],
        Creds {
            uid: 65534,
            gid: 65534,
        },
    );
    assert_eq!(out.assert_success().stdout.trim(), "65534");
}
