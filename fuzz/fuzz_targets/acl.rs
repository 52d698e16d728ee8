//! parse_acl over an in-memory source: the input (up to its first NUL) is the main file, the
//! rest (or the whole input again) is `/etc/qemu/inc.conf` (mode 0640 root:1000), reachable by
//! `include inc.conf`; both as raw bytes.
#![no_main]

use std::path::Path;

use ifup_policy::{
    parse_acl, AclVerb, AclVerdict, Caller, FileData, FileMeta, IfName, MemSource, PolicyError,
    S_IFREG,
};
use libfuzzer_sys::fuzz_target;

fn one_line(e: &PolicyError) {
    let msg = e.to_string();
    assert!(!msg.is_empty());
    assert!(!msg.chars().any(char::is_control), "{msg:?}");
    assert!(!e.is_usage(), "ACL errors are denials, not usage errors");
}

fuzz_target!(|data: &[u8]| {
    let (main, inc) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, data),
    };
    let mut src = MemSource::new();
    src.insert_bytes("/etc/qemu/bridge.conf", main).insert(
        "/etc/qemu/inc.conf",
        FileData {
            text: inc.to_vec(),
            file: FileMeta {
                uid: 0,
                gid: 1000,
                mode: S_IFREG | 0o640,
            },
            dir: MemSource::ROOT_DIR,
        },
    );
    // alice (group 1000) can read inc.conf, bob cannot.
    let alice = Caller {
        uid: 1000,
        gid: 1000,
        groups: vec![1000],
    };
    let bob = Caller {
        uid: 1001,
        gid: 1001,
        groups: vec![1001, 27],
    };
    let path = Path::new("/etc/qemu/bridge.conf");
    let for_alice = parse_acl(path, &src, &alice);
    let for_bob = parse_acl(path, &src, &bob);
    match (&for_alice, &for_bob) {
        (Ok(a), Ok(b)) => {
            let (main, inc) = (String::from_utf8_lossy(main), String::from_utf8_lossy(inc));
            let names = main
                .split_whitespace()
                .chain(inc.split_whitespace())
                .chain(["br0", "all"])
                .take(32)
                .filter_map(|w| IfName::parse(w).ok());
            for name in names {
                // Bob reads less, so he is allowed no more than alice.
                if b.permits(&name) {
                    assert!(a.permits(&name), "{name}");
                }
                for acl in [a, b] {
                    let denied = acl.rules().iter().any(|r| {
                        r.verb == AclVerb::Deny
                            && match &r.target {
                                ifup_policy::AclTarget::All => true,
                                ifup_policy::AclTarget::Name(n) => *n == name,
                            }
                    });
                    if denied {
                        assert!(!acl.permits(&name));
                        assert!(matches!(acl.verdict(&name), AclVerdict::Denied { .. }));
                    }
                    assert_eq!(
                        acl.permits(&name),
                        matches!(acl.verdict(&name), AclVerdict::Allowed { .. })
                    );
                }
            }
            // Deny lines count for everyone: both see the same denies.
            let denies = |acl: &ifup_policy::Acl| {
                acl.rules()
                    .iter()
                    .filter(|r| r.verb == AclVerb::Deny)
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(denies(a), denies(b));
        }
        // Errors do not depend on who asks.
        (Err(a), Err(b)) => {
            one_line(a);
            one_line(b);
        }
        (a, b) => panic!("one caller got an ACL, the other an error: {a:?} / {b:?}"),
    }
});
