//! The netlink wire format, as pure functions over bytes: the messages of a reply datagram, what
//! each says (data, acknowledgement, error with extended ack, end of dump), and attributes
//! (`struct nlattr`: length, type, payload, padded to 4 bytes; nested ones hold attributes).
//!
//! Everything the kernel sends back goes through [`messages`] and [`classify`] before anything
//! else looks at it; both are fuzzed (`fuzz/fuzz_targets/netlink_reply.rs`) and tested on captured
//! and malformed replies. Nothing here can panic on any input.

use nix::errno::Errno;

use crate::consts::nl;

/// Round up to the 4-byte alignment of netlink messages and attributes.
pub fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One message of a datagram: its header fields and its body (after the 16-byte header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub port: u32,
    pub body: &'a [u8],
}

/// The messages of one datagram, in order. A message whose length is shorter than a header or
/// runs past the datagram yields one `Err` and ends the walk; trailing bytes shorter than a header
/// are ignored (the kernel never sends them).
pub fn messages(datagram: &[u8]) -> impl Iterator<Item = Result<Message<'_>, &'static str>> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        if rest.len() < nl::HDRLEN {
            return None;
        }
        let parsed = (|| {
            let len = usize::try_from(u32_at(rest, 0)?).ok()?;
            if len < nl::HDRLEN || len > rest.len() {
                return None;
            }
            let msg = Message {
                ty: u16_at(rest, 4)?,
                flags: u16_at(rest, 6)?,
                seq: u32_at(rest, 8)?,
                port: u32_at(rest, 12)?,
                body: rest.get(nl::HDRLEN..len)?,
            };
            Some((msg, align4(len)))
        })();
        match parsed {
            Some((msg, next)) => {
                rest = rest.get(next..).unwrap_or(&[]);
                Some(Ok(msg))
            }
            None => {
                rest = &[];
                Some(Err("bad message length"))
            }
        }
    })
}

/// What one message of a reply says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A payload (a link, a route, ...), to be parsed by the caller.
    Data(&'a [u8]),
    /// `NLMSG_ERROR` with code 0: the request succeeded.
    Ack,
    /// `NLMSG_ERROR` with an error code, and the kernel's extended-ack text if it sent one.
    Error {
        errno: Errno,
        ext_ack: Option<String>,
    },
    /// `NLMSG_DONE`: the end of a dump, possibly carrying an error code.
    Done(Option<Errno>),
}

/// Decode one message. `NLMSG_ERROR` bodies are checked for length; the extended-ack attributes
/// follow the echoed request (only its header when `NLM_F_CAPPED` is set).
pub fn classify<'a>(msg: &Message<'a>) -> Result<Reply<'a>, &'static str> {
    match msg.ty {
        nl::MSG_ERROR => {
            let code = u32_at(msg.body, 0).ok_or("short error message")? as i32;
            if msg.body.len() < 4 + nl::HDRLEN {
                return Err("short error message");
            }
            if code == 0 {
                return Ok(Reply::Ack);
            }
            let mut ext_ack = None;
            if msg.flags & nl::F_ACK_TLVS != 0 {
                let echoed = if msg.flags & nl::F_CAPPED != 0 {
                    nl::HDRLEN
                } else {
                    align4(u32_at(msg.body, 4).map_or(0, |l| l as usize))
                };
                let tlvs = msg.body.get(4usize.saturating_add(echoed)..).unwrap_or(&[]);
                ext_ack = attrs(tlvs)
                    .find(|(ty, _)| *ty == nl::ERR_ATTR_MSG)
                    .map(|(_, p)| c_string(p));
            }
            Ok(Reply::Error {
                errno: Errno::from_raw(code.saturating_neg()),
                ext_ack,
            })
        }
        nl::MSG_DONE => {
            let code = u32_at(msg.body, 0).map_or(0, |c| c as i32);
            Ok(Reply::Done(
                (code < 0).then(|| Errno::from_raw(code.saturating_neg())),
            ))
        }
        _ => Ok(Reply::Data(msg.body)),
    }
}

/// The attributes in `b`: (type without the flag bits, payload) pairs. The walk ends at the
/// first attribute whose length is out of bounds.
pub fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(b, 0)?);
        let ty = u16_at(b, 2)? & nl::NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            b = &[];
            return None;
        }
        let payload = b.get(4..len)?;
        b = b.get(align4(len)..).unwrap_or(&[]);
        Some((ty, payload))
    })
}

/// The payload of the first attribute of type `ty` in `b`.
pub fn attr(b: &[u8], ty: u16) -> Option<&[u8]> {
    attrs(b).find(|(t, _)| *t == ty).map(|(_, p)| p)
}

/// A `u32` payload.
pub fn u32_of(p: &[u8]) -> Option<u32> {
    u32_at(p, 0)
}

/// A `u16` payload.
pub fn u16_of(p: &[u8]) -> Option<u16> {
    u16_at(p, 0)
}

/// A `u8` flag payload: true when non-zero.
pub fn flag_of(p: &[u8]) -> Option<bool> {
    p.first().map(|&v| v != 0)
}

/// A NUL-terminated (or not) byte string from the kernel, made valid UTF-8.
pub fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Append one attribute (header, payload, padding) to `out`.
pub fn push_attr(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(align4(out.len()), 0);
}

/// The payload of a nested attribute made of `children` (type, payload).
pub fn nest(children: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (ty, payload) in children {
        push_attr(&mut body, *ty, payload);
    }
    body
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A message: header and body, padded.
    fn msg(ty: u16, flags: u16, seq: u32, port: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&port.to_ne_bytes());
        m.extend_from_slice(body);
        m.resize(align4(m.len()), 0);
        m
    }

    fn error_body(code: i32, echoed_len: u32, tlvs: &[u8]) -> Vec<u8> {
        let mut b = code.to_ne_bytes().to_vec();
        let mut hdr = vec![0u8; 16];
        hdr[..4].copy_from_slice(&echoed_len.to_ne_bytes());
        b.extend_from_slice(&hdr);
        b.extend_from_slice(tlvs);
        b
    }

    #[test]
    fn walks_messages_and_classifies() {
        let mut d = msg(16, nl::F_MULTI, 7, 99, b"link");
        d.extend(msg(nl::MSG_ERROR, 0, 7, 99, &error_body(0, 16, &[])));
        let got: Vec<_> = messages(&d).map(|m| m.unwrap()).collect();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].ty, got[0].seq, got[0].port), (16, 7, 99));
        assert_eq!(classify(&got[0]).unwrap(), Reply::Data(b"link"));
        assert_eq!(classify(&got[1]).unwrap(), Reply::Ack);
    }

    #[test]
    fn error_with_extended_ack() {
        let mut tlvs = Vec::new();
        push_attr(
            &mut tlvs,
            nl::ERR_ATTR_MSG,
            b"mtu greater than device maximum\0",
        );
        // Not capped: the whole 16-byte request is echoed.
        let body = error_body(-22, 16, &tlvs);
        let d = msg(nl::MSG_ERROR, nl::F_ACK_TLVS, 1, 1, &body);
        let m = messages(&d).next().unwrap().unwrap();
        assert_eq!(
            classify(&m).unwrap(),
            Reply::Error {
                errno: Errno::EINVAL,
                ext_ack: Some("mtu greater than device maximum".into())
            }
        );
        // Capped: only the header was echoed, whatever its length field says.
        let body = error_body(-1, 400, &tlvs);
        let d = msg(nl::MSG_ERROR, nl::F_ACK_TLVS | nl::F_CAPPED, 1, 1, &body);
        let m = messages(&d).next().unwrap().unwrap();
        assert!(matches!(
            classify(&m).unwrap(),
            Reply::Error {
                errno: Errno::EPERM,
                ext_ack: Some(_)
            }
        ));
        // Not capped but the echoed length is absurd: no text, no panic.
        let d = msg(
            nl::MSG_ERROR,
            nl::F_ACK_TLVS,
            1,
            1,
            &error_body(-1, u32::MAX, &tlvs),
        );
        let m = messages(&d).next().unwrap().unwrap();
        assert_eq!(
            classify(&m).unwrap(),
            Reply::Error {
                errno: Errno::EPERM,
                ext_ack: None
            }
        );
    }

    #[test]
    fn done_with_and_without_error() {
        let d = msg(nl::MSG_DONE, nl::F_MULTI, 1, 1, &0i32.to_ne_bytes());
        let m = messages(&d).next().unwrap().unwrap();
        assert_eq!(classify(&m).unwrap(), Reply::Done(None));
        let d = msg(nl::MSG_DONE, nl::F_MULTI, 1, 1, &(-2i32).to_ne_bytes());
        let m = messages(&d).next().unwrap().unwrap();
        assert_eq!(classify(&m).unwrap(), Reply::Done(Some(Errno::ENOENT)));
        // An old kernel's DONE without a body.
        let d = msg(nl::MSG_DONE, nl::F_MULTI, 1, 1, &[]);
        let m = messages(&d).next().unwrap().unwrap();
        assert_eq!(classify(&m).unwrap(), Reply::Done(None));
    }

    #[test]
    fn malformed_datagrams() {
        // Length shorter than a header, longer than the datagram, zero.
        for len in [0u32, 8, 15, 1000, u32::MAX] {
            let mut d = msg(16, 0, 1, 1, b"abcd");
            d[..4].copy_from_slice(&len.to_ne_bytes());
            let all: Vec<_> = messages(&d).collect();
            assert_eq!(all, [Err("bad message length")], "len {len}");
        }
        // A good message followed by garbage: the good one, then one error.
        let mut d = msg(16, 0, 1, 1, b"abcd");
        d.extend_from_slice(&[0xff; 20]);
        let all: Vec<_> = messages(&d).collect();
        assert!(all[0].is_ok());
        assert_eq!(all[1], Err("bad message length"));
        assert_eq!(all.len(), 2);
        // A tail shorter than a header is ignored; empty input has no messages.
        assert_eq!(messages(&[0u8; 15]).count(), 0);
        assert_eq!(messages(&[]).count(), 0);
        // An error message too short for its code or its echoed header.
        for body in [&[][..], &[0xff, 0xff], &[0xfe, 0xff, 0xff, 0xff, 0, 0]] {
            let d = msg(nl::MSG_ERROR, 0, 1, 1, body);
            let m = messages(&d).next().unwrap().unwrap();
            assert_eq!(classify(&m), Err("short error message"), "{body:?}");
        }
    }

    #[test]
    fn attributes_round_trip_and_stop_at_bad_lengths() {
        let mut b = Vec::new();
        push_attr(&mut b, 3, b"tap0\0");
        push_attr(
            &mut b,
            4 | nl::NLA_F_NESTED,
            &nest(&[(1, vec![7]), (2, vec![1, 2])]),
        );
        push_attr(&mut b, 13, &1500u32.to_ne_bytes());
        let all: Vec<_> = attrs(&b).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(c_string(all[0].1), "tap0");
        // The nested flag is masked off the type.
        assert_eq!(all[1].0, 4);
        let inner: Vec<_> = attrs(all[1].1).collect();
        assert_eq!(inner, [(1, &[7u8][..]), (2, &[1u8, 2][..])]);
        assert_eq!(attr(&b, 13).and_then(u32_of), Some(1500));
        assert_eq!(attr(&b, 99), None);
        // A length past the end, or below the header size, ends the walk.
        let mut bad = b.clone();
        bad[..2].copy_from_slice(&200u16.to_ne_bytes());
        assert_eq!(attrs(&bad).count(), 0);
        bad[..2].copy_from_slice(&2u16.to_ne_bytes());
        assert_eq!(attrs(&bad).count(), 0);
        // Short payloads read as nothing, not as a panic.
        assert_eq!(u32_of(&[1, 2]), None);
        assert_eq!(u16_of(&[1]), None);
        assert_eq!(flag_of(&[]), None);
        assert_eq!(c_string(b"\xffab\0cd"), "\u{fffd}ab");
    }
}
