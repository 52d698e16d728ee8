//! parse_config over an in-memory source: the input (up to its first NUL) is the main file, the
//! rest (or the whole input again) is `/fuzz/inc.conf`, reachable by `include inc.conf`.
#![no_main]

use std::path::Path;

use ifup_policy::{
    parse_config, validate_glob, Config, FileData, IfName, MemSource, Mtu, PolicyError, Trust,
    MAX_MTU, MAX_VLAN, MIN_MTU, MIN_VLAN,
};
use libfuzzer_sys::fuzz_target;

fn one_line(e: &PolicyError) {
    let msg = e.to_string();
    assert!(!msg.is_empty());
    assert!(!msg.chars().any(char::is_control), "{msg:?}");
}

fn check(config: &Config, text: &str) {
    let options = config
        .bridge
        .iter()
        .map(|b| (&b.bridge, &b.options, &b.at))
        .chain(config.rules.iter().map(|r| (&r.bridge, &r.options, &r.at)));
    for (bridge, o, at) in options {
        assert_eq!(IfName::parse(bridge.as_str()).as_ref(), Ok(bridge));
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
    for rule in &config.rules {
        assert!(validate_glob(&rule.glob).is_ok());
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
            .map(|r| r.bridge.clone())
            .or_else(|| config.bridge.as_ref().map(|b| b.bridge.clone()));
        assert_eq!(config.choose(&tap).map(|c| c.bridge), expected);
    }
}

fuzz_target!(|data: &[u8]| {
    let (main, inc) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, data),
    };
    let main = String::from_utf8_lossy(main);
    let inc = String::from_utf8_lossy(inc);
    let mut src = MemSource::new();
    src.insert_text("/fuzz/main.conf", &main)
        .insert_text("/fuzz/inc.conf", &inc)
        .insert(
            "/fuzz/group-writable.conf",
            FileData {
                text: inc.to_string(),
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
        Ok(Some(config)) => check(config, &main),
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
