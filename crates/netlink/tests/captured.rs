//! Replies captured from a real kernel (Linux 6.18, `tests/data/*.bin`: each file is the
//! datagrams the kernel sent for one request) decode as the kernel meant them, and every
//! truncation or corruption of them is an error or a smaller answer, never a panic.
//!
//! The captures: in a fresh network namespace, `ip link add br0 type bridge`,
//! `ip tuntap add dev vm0 mode tap user 1000 group 27`, vm0 on br0 with `isolated on learning
//! off`, both up; then `RTM_GETLINK` by name for vm0, br0 and lo, and an `RTM_SETLINK` of vm0's
//! MTU to 70000 with extended acks on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ifup_netlink::wire::{classify, messages, Reply};
use ifup_netlink::{parse_link, Errno, Link, PortFlags};

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}.bin", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The data payloads and the final reply of a captured exchange.
fn decode(bytes: &[u8]) -> (Vec<&[u8]>, Reply<'_>) {
    let mut payloads = Vec::new();
    let mut last = None;
    for m in messages(bytes) {
        match classify(&m.unwrap()).unwrap() {
            Reply::Data(p) => payloads.push(p),
            other => last = Some(other),
        }
    }
    (payloads, last.expect("an ack or an error"))
}

fn link(name: &str) -> Link {
    let bytes = data(&format!("getlink-{name}"));
    let (payloads, last) = decode(&bytes);
    assert_eq!(last, Reply::Ack);
    assert_eq!(payloads.len(), 1);
    parse_link(payloads[0]).unwrap()
}

#[test]
fn a_tap_bridge_port() {
    let l = link("vm0");
    assert_eq!(l.name, "vm0");
    assert!(l.is_tap() && l.up);
    let tun = l.tun.unwrap();
    assert_eq!(
        (tun.owner, tun.group, tun.persist),
        (Some(1000), Some(27), true)
    );
    assert_eq!(l.max_mtu, Some(65521));
    assert_eq!(l.proxy_arp, Some(false));
    assert_eq!(l.address.as_ref().map(Vec::len), Some(6));
    assert!(l.master.is_some());
    assert_eq!(
        l.port,
        Some(PortFlags {
            isolated: true,
            learning: false,
            ..PortFlags::NEW_PORT
        })
    );
}

#[test]
fn a_bridge_and_the_loopback() {
    let b = link("br0");
    assert!(b.is_bridge() && !b.is_tap());
    let info = b.bridge.unwrap();
    assert!(!info.stp && !info.vlan_filtering);
    assert_eq!(info.forward_delay, 1500);
    assert_eq!(b.port, None);
    let lo = link("lo");
    assert!(lo.loopback && lo.kind.is_none() && lo.tun.is_none());
    assert_eq!(lo.describe(), "the loopback device");
}

#[test]
fn an_error_with_the_kernels_text() {
    let bytes = data("setlink-mtu-error");
    let (payloads, last) = decode(&bytes);
    assert!(payloads.is_empty());
    match last {
        Reply::Error { errno, ext_ack } => {
            assert_eq!(errno, Errno::EINVAL);
            let text = ext_ack.unwrap();
            assert!(text.contains("mtu"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

/// Every prefix, and every single-byte corruption, of every capture: the decoders answer with
/// an error or with less, never a panic.
#[test]
fn truncated_and_corrupted_captures() {
    for name in [
        "getlink-vm0",
        "getlink-br0",
        "getlink-lo",
        "setlink-mtu-error",
    ] {
        let good = data(name);
        let check = |bytes: &[u8]| {
            for m in messages(bytes).flatten() {
                if let Ok(Reply::Data(p)) = classify(&m) {
                    let _ = parse_link(p);
                }
            }
        };
        for len in 0..good.len() {
            check(&good[..len]);
        }
        for at in 0..good.len() {
            for v in [0x00, 0xff, 0x80, 0x04] {
                let mut bad = good.clone();
                bad[at] = v;
                check(&bad);
            }
        }
        // Cut exactly at the end of the first message: the payload parses to the same link.
        if name.starts_with("getlink") {
            let first = u32::from_ne_bytes(good[..4].try_into().unwrap()) as usize;
            let (p, _) = decode(&good);
            let whole = parse_link(p[0]).unwrap();
            let cut: Vec<_> = messages(&good[..first]).collect();
            assert_eq!(cut.len(), 1);
            match classify(cut[0].as_ref().unwrap()).unwrap() {
                Reply::Data(p) => assert_eq!(parse_link(p).unwrap(), whole),
                other => panic!("{other:?}"),
            }
        }
    }
}
