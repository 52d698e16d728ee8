//! Frames in and out of an existing tap, as the guest side (QEMU) would see them: attach a queue
//! with `/dev/net/tun` + `TUNSETIFF`, then write and read raw Ethernet frames. Lets a test drive
//! traffic through a bridge without booting a guest.
//!
//! The `TUNSETIFF` ioctl lives in the testkit's `sys` module, with the rest of its unsafe code.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use nix::libc;

use crate::assert_in_test_netns;
use crate::bridge_tool::wait_forwarding;
use crate::sys::{self, IFF_NO_PI, IFF_TAP};

/// Ethernet broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of an 802.1Q VLAN tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// EtherType for test frames: IEEE 802 "local experimental" 1, which nothing on a host sends.
pub const ETH_P_TEST: u16 = 0x88b5;

/// One queue of a tap, opened as the guest side: what the test writes enters the host (and the
/// bridge) through the tap; what the host sends out of the tap is read here. While it is open the
/// tap has carrier. Closing it (drop) detaches the queue; a persistent tap stays.
pub struct TapQueue {
    name: String,
    file: File,
}

impl TapQueue {
    /// Attaches to the existing tap `name` (`IFF_TAP | IFF_NO_PI`: frames without a packet-info
    /// header) in the test namespace. Panics on failure.
    pub fn attach(name: &str) -> TapQueue {
        assert_in_test_netns(&format!("opening tap {name}"));
        TapQueue::try_attach(name)
            .unwrap_or_else(|e| panic!("TUNSETIFF {name} (attach to the tap): {e}"))
    }

    /// Like [`TapQueue::attach`], in whatever namespace the process is, returning the kernel's
    /// error (`EPERM` when `tun_not_capable()` refuses the caller): the probe `examples/open_tap.rs`
    /// uses it.
    pub fn try_attach(name: &str) -> std::io::Result<TapQueue> {
        assert!(
            !name.is_empty() && name.len() < libc::IFNAMSIZ,
            "bad interface name {name:?}"
        );
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        sys::tun_set_iff(file.as_fd(), name, IFF_TAP | IFF_NO_PI)?;
        Ok(TapQueue {
            name: name.to_owned(),
            file,
        })
    }

    /// The tap's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends one frame into the host through the tap, as a guest would.
    pub fn send(&mut self, frame: &[u8]) {
        let n = self
            .file
            .write(frame)
            .unwrap_or_else(|e| panic!("writing a frame to tap {}: {e}", self.name));
        assert_eq!(n, frame.len(), "short write to tap {}", self.name);
    }

    /// The next frame the host sent out of the tap, or `None` after `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            match self.file.read(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    return Some(buf);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("reading a frame from tap {}: {e}", self.name),
            }
        }
    }

    /// The first frame within `timeout` for which `want` is true; other frames (the host's own
    /// IPv6 neighbour discovery, MLD, …) are skipped.
    pub fn recv_matching(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self.recv(left)?;
            if want(&frame) {
                return Some(frame);
            }
        }
    }

    /// Discards every frame already queued.
    pub fn drain(&mut self) {
        while self.recv(Duration::ZERO).is_some() {}
    }
}

/// Attaches a queue to each tap of `taps` (giving it carrier), waits until the bridge forwards on
/// all of them ([`wait_forwarding`], within `timeout`), and drains what arrived meanwhile.
pub fn open_ports<const N: usize>(taps: [&str; N], timeout: Duration) -> [TapQueue; N] {
    let mut queues = taps.map(TapQueue::attach);
    wait_forwarding(&taps, timeout);
    for q in &mut queues {
        q.drain();
    }
    queues
}

/// An Ethernet frame `dst`, `src`, `ethertype`, `payload`, padded to the 60-byte minimum.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len().max(46));
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f.resize(f.len().max(60), 0);
    f
}

/// Like [`ethernet`], with an 802.1Q tag for VLAN `vid` (priority 0).
pub fn ethernet_tagged(
    dst: [u8; 6],
    src: [u8; 6],
    vid: u16,
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut inner = Vec::with_capacity(4 + payload.len());
    inner.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    inner.extend_from_slice(&ethertype.to_be_bytes());
    inner.extend_from_slice(payload);
    ethernet(dst, src, ETH_P_8021Q, &inner)
}

/// A broadcast ARP request from `src_mac`/`src_ip`: who has `target_ip`?
pub fn arp_request(src_mac: [u8; 6], src_ip: [u8; 4], target_ip: [u8; 4]) -> Vec<u8> {
    let mut p = Vec::with_capacity(28);
    p.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]); // Ethernet, IPv4, request
    p.extend_from_slice(&src_mac);
    p.extend_from_slice(&src_ip);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&target_ip);
    ethernet(BROADCAST, src_mac, ETH_P_ARP, &p)
}

/// Whether `frame` is an untagged ARP reply saying `ip` is at some MAC, sent to `to_mac`.
pub fn is_arp_reply(frame: &[u8], ip: [u8; 4], to_mac: [u8; 6]) -> bool {
    frame.len() >= 42
        && frame[..6] == to_mac
        && ethertype(frame) == ETH_P_ARP
        && frame[20..22] == [0, 2]
        && frame[28..32] == ip
}

/// The frame's outer EtherType (`ETH_P_8021Q` for a tagged frame).
pub fn ethertype(frame: &[u8]) -> u16 {
    frame
        .get(12..14)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}

/// The VLAN id of a tagged frame, `None` for an untagged one.
pub fn vlan_id(frame: &[u8]) -> Option<u16> {
    if ethertype(frame) != ETH_P_8021Q {
        return None;
    }
    frame
        .get(14..16)
        .map(|b| u16::from_be_bytes([b[0], b[1]]) & 0x0fff)
}

/// Whether `needle` occurs anywhere in `frame` (to recognise a test frame by its payload).
pub fn contains(frame: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && frame.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let a = [2, 0, 0, 0, 0, 0xa];
        let f = ethernet(BROADCAST, a, ETH_P_TEST, b"hello");
        assert_eq!(f.len(), 60);
        assert_eq!(ethertype(&f), ETH_P_TEST);
        assert_eq!(vlan_id(&f), None);
        assert!(contains(&f, b"hello"));
        let t = ethernet_tagged(BROADCAST, a, 20, ETH_P_TEST, b"hello");
        assert_eq!(vlan_id(&t), Some(20));
        assert_eq!(&t[16..18], &ETH_P_TEST.to_be_bytes());
        let r = arp_request(a, [10, 0, 0, 2], [10, 0, 0, 1]);
        assert_eq!(ethertype(&r), ETH_P_ARP);
        assert_eq!(&r[38..42], &[10, 0, 0, 1]);
        // The same layout with opcode 2 and the sender 10.0.0.1, sent to `a`, is a reply.
        let mut reply = r.clone();
        reply[..6].copy_from_slice(&a);
        reply[21] = 2;
        reply[28..32].copy_from_slice(&[10, 0, 0, 1]);
        assert!(is_arp_reply(&reply, [10, 0, 0, 1], a));
        assert!(!is_arp_reply(&r, [10, 0, 0, 1], a));
    }
}
