//! The reply parser of `ifup-netlink` over arbitrary datagrams: `wire::messages` splits the input,
//! `wire::classify` decodes each message, `wire::attrs` walks every data payload (nested
//! attributes too, a few levels deep), and `parse_link` reads every data payload as a link.
//! Seeds: the replies captured from a real kernel, `crates/netlink/tests/data/*.bin`.
//!
//! Invariants: no panic; every message body, payload and attribute lies within the input; the
//! walk ends at the first malformed message; the extended-ack text of an error is no longer (in
//! characters) than the input; a parsed link's name and address come from the payload.
#![no_main]

use ifup_netlink::consts::nl::{HDRLEN, MSG_DONE, MSG_ERROR};
use ifup_netlink::parse_link;
use ifup_netlink::wire::{attrs, classify, messages, Reply};
use libfuzzer_sys::fuzz_target;

/// How deep nested attributes are walked (the kernel's link replies nest three levels).
const DEPTH: usize = 4;

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr_range(), inner.as_ptr_range());
    inner.is_empty() || (o.start <= i.start && i.end <= o.end)
}

/// Walk every attribute as if it might be nested; returns how many were seen.
fn walk(input: &[u8], b: &[u8], depth: usize) -> usize {
    let mut n = 0;
    for (_, payload) in attrs(b) {
        assert!(within(b, payload), "attribute payload outside its parent");
        assert!(within(input, payload));
        n += 1;
        if depth > 0 {
            n += walk(input, payload, depth - 1);
        }
    }
    // Each attribute takes at least its 4-byte header.
    assert!(n <= b.len() / 4 * (DEPTH + 1));
    n
}

fuzz_target!(|data: &[u8]| {
    let mut count = 0usize;
    let mut failed = false;
    for m in messages(data) {
        assert!(!failed, "a message after the walk failed");
        count += 1;
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                assert!(!e.is_empty());
                failed = true;
                continue;
            }
        };
        assert!(within(data, m.body), "message body outside the input");
        assert!(HDRLEN + m.body.len() <= data.len());
        match classify(&m) {
            Ok(Reply::Data(p)) => {
                assert!(within(m.body, p));
                walk(data, p, DEPTH);
                if let Ok(link) = parse_link(p) {
                    assert!(link.index != 0);
                    assert!(link.name.chars().count() <= p.len());
                    assert!(link.address.as_ref().map_or(0, Vec::len) <= p.len());
                    assert!(link.master != Some(0));
                    let _ = (link.is_tap(), link.is_bridge(), link.describe());
                }
            }
            Ok(Reply::Error { ext_ack, .. }) => {
                assert_eq!(m.ty, MSG_ERROR, "only NLMSG_ERROR is an error");
                if let Some(text) = ext_ack {
                    // Characters, not bytes: the lossy UTF-8 conversion writes U+FFFD (3 bytes)
                    // for each bad byte of the kernel's text.
                    assert!(text.chars().count() <= data.len(), "{text:?}");
                    assert!(text.chars().count() <= m.body.len());
                    assert!(!text.contains('\0'));
                }
            }
            Ok(Reply::Ack) => assert_eq!(m.ty, MSG_ERROR),
            Ok(Reply::Done(_)) => assert_eq!(m.ty, MSG_DONE),
            Err(e) => {
                assert_eq!(m.ty, MSG_ERROR, "only an error message can be malformed");
                assert!(!e.is_empty());
            }
        }
    }
    // Every message takes at least a header.
    assert!(count <= data.len() / HDRLEN);
});
