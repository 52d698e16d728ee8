//! parse_config over an in-memory source: the input (up to its first NUL) is the main file, the
//! rest (or the whole input again) is `/fuzz/inc.conf`, reachable by `include inc.conf`; both as
//! raw bytes.
//! Seeds: `fuzz/seeds/config/`; dictionary: `fuzz/dict/config.dict` (every keyword and option,
//! IPv4/IPv6 literals and prefixes, MAC addresses).
#![no_main]

use std::path::Path;

use ifup_policy::{
    parse_config, validate_glob, BridgeDef, Config, FileData, IfName, MemSource, Mtu, PolicyError,
    Prefix, Trust, Way, MAX_MTU, MAX_VLAN, MIN_MTU, MIN_VLAN,
};
use libfuzzer_sys::fuzz_target;

fn one_line(e: &PolicyError) {
    let msg = e.to_string();
    assert!(!msg.is_empty());
    assert!(!msg.chars().any(char::is_control), "{msg:?}");
}

/// A route list: not empty, no duplicates, every prefix a network (no host bits) whose length
/// fits its family.
fn check_routes(list: &[Prefix]) {
    assert!(!list.is_empty());
    for (i, p) in list.iter().enumerate() {
        assert!(p.is_network(), "{p} has host bits");
        assert!(p.len <= if p.is_ipv6() { 128 } else { 32 });
        assert!(!list[..i].contains(p), "{p} twice");
    }
}

/// A bridge to create: its MAC is unicast, and locally administered unless the admin gave one;
/// its addresses are interface addresses (with a prefix length > 0).
fn check_bridge_def(def: &BridgeDef) {
    assert_eq!(IfName::parse(def.name.as_str()).as_ref(), Ok(&def.name));
    let mac = def.mac();
    assert_eq!(mac[0] & 1, 0, "multicast MAC {mac:02x?}");
    assert_ne!(mac, [0; 6]);
    match def.mac {
        Some(given) => assert_eq!(mac, given),
        None => {
            assert_eq!(
                mac[0] & 2,
                2,
                "derived MAC {mac:02x?} is not locally administered"
            );
            // Derived from the name alone: the same every time.
            assert_eq!(mac, def.mac());
        }
    }
    for (i, a) in def.addresses.iter().enumerate() {
        assert!(a.len > 0 && a.len <= if a.is_ipv6() { 128 } else { 32 });
        assert!(!def.addresses[..i].contains(a));
    }
}

fn check(config: &Config, text: &str) {
    let line = config
        .bridge
        .iter()
        .map(|b| (Some(&b.bridge), &b.options, &b.at));
    let rules = config.rules.iter().map(|r| {
        let bridge = match &r.way {
            Way::Bridge(b) => {
                // A bridge rule never carries proxy-arp.
                assert_eq!(r.options.proxy_arp, None, "proxy-arp on a bridge rule");
                Some(b)
            }
            Way::Route(list) => {
                // A routed rule never carries bridge-port options.
                assert_eq!(r.options.first_bridge_port_option(), None, "{:?}", r.options);
                check_routes(list);
                None
            }
        };
        (bridge, &r.options, &r.at)
    });
    for (bridge, o, at) in line.chain(rules) {
        if let Some(bridge) = bridge {
            assert_eq!(IfName::parse(bridge.as_str()).as_ref(), Ok(bridge));
        }
        assert!(at.line >= 1);
        if let Mtu::Fixed(n) = o.mtu {
            assert!((MIN_MTU..=MAX_MTU).contains(&n));
        }
        if let Some(v) = o.vlan {
            assert!((MIN_VLAN..=MAX_VLAN).contains(&v));
            assert!(!o.is_tagged(v));
        }
        for r in &o.tagged {
            assert!(MIN_VLAN <= r.first && r.first <= r.last && r.last <= MAX_VLAN);
        }
        // Sorted, disjoint and not adjacent (merged).
        for w in o.tagged.windows(2) {
            assert!(u32::from(w[0].last) + 1 < u32::from(w[1].first));
        }
    }
    if let Some(b) = &config.bridge {
        assert_eq!(b.options.proxy_arp, None, "proxy-arp on the bridge line");
    }
    for rule in &config.rules {
        assert!(validate_glob(&rule.glob).is_ok());
    }
    for (i, def) in config.create_bridges.iter().enumerate() {
        check_bridge_def(def);
        // One create-bridge line per name; bridge_def finds it.
        assert!(config.create_bridges[..i]
            .iter()
            .all(|d| d.name != def.name));
        assert_eq!(config.bridge_def(&def.name), Some(def));
    }
    // choose() = the first rule whose glob matches, else the bridge line.
    for word in text.split_whitespace().take(16) {
        let Ok(tap) = IfName::parse(word) else {
            continue;
        };
        let expected = config
            .rules
            .iter()
            .find(|r| ifup_policy::glob_match(&r.glob, tap.as_str()))
            .map(|r| r.way.clone())
            .or_else(|| {
                config
                    .bridge
                    .as_ref()
                    .map(|b| Way::Bridge(b.bridge.clone()))
            });
        assert_eq!(config.choose(&tap).map(|c| c.way), expected);
        // The bridge helper's choice for a bridge: only bridge rules for that bridge, or the
        // bridge line naming it; never a routed rule.
        for bridge in config.rules.iter().filter_map(|r| match &r.way {
            Way::Bridge(b) => Some(b),
            Way::Route(_) => None,
        }) {
            if let Some(c) = config.choose_for_bridge(&tap, bridge) {
                assert_eq!(c.way, Way::Bridge(bridge.clone()));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (main, inc) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, data),
    };
    // Raw bytes: a line that is not UTF-8 is one of the errors the parser reports.
    let mut src = MemSource::new();
    src.insert_bytes("/fuzz/main.conf", main)
        .insert_bytes("/fuzz/inc.conf", inc)
        .insert(
            "/fuzz/group-writable.conf",
            FileData {
                text: inc.to_vec(),
                file: ifup_policy::FileMeta {
                    uid: 0,
                    gid: 0,
                    mode: ifup_policy::S_IFREG | 0o664,
                },
                dir: MemSource::ROOT_DIR,
            },
        );
    let path = Path::new("/fuzz/main.conf");
    let any = parse_config(path, &src, Trust::Any);
    let strict = parse_config(path, &src, Trust::RootOwnedOnly);
    match &any {
        Ok(Some(config)) => check(config, &String::from_utf8_lossy(main)),
        Ok(None) => unreachable!("the main file exists"),
        Err(e) => one_line(e),
    }
    match &strict {
        Ok(Some(config)) => {
            // Trust only removes files: whatever parses strictly parses the same without it.
            assert_eq!(any.as_ref().ok(), Some(&Some(config.clone())));
        }
        Ok(None) => unreachable!("the main file exists"),
        Err(e) => one_line(e),
    }
});
