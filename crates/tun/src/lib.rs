//! The tun/tap device and descriptor passing, for the bridge-helper mode of `qemu-ifup`:
//!
//! * [`create_tap`] — a new, non-persistent tap with a kernel-chosen name (`tap%d`), as QEMU's
//!   `qemu-bridge-helper` makes it, with `IFF_VNET_HDR` when asked for and offered by the kernel;
//! * [`Channel::from_arg`] + [`Channel::send_fd`] — the unix socket QEMU (or libvirt) passed as
//!   `--fd=N`, checked before anything else is opened, and the tap's descriptor sent over it with
//!   one byte, as `SCM_RIGHTS`.
//!
//! Mechanism only: no policy, no logging. The unsafe code (the `ioctl`s, and taking ownership of
//! the descriptor number from argv) is in the private `sys` module.

mod sys;

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, AddressFamily, ControlMessage, MsgFlags, UnixAddr};
use nix::sys::stat::SFlag;

/// `IFF_TAP`, `IFF_NO_PI`, `IFF_VNET_HDR` of `<linux/if_tun.h>`.
const IFF_TAP: u16 = 0x0002;
const IFF_NO_PI: u16 = 0x1000;
const IFF_VNET_HDR: u16 = 0x4000;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum TunError {
    #[error("cannot open /dev/net/tun: {}", .0.desc())]
    Open(#[source] Errno),
    #[error("cannot create a tap (TUNSETIFF): {}", .0.desc())]
    Create(#[source] Errno),
    #[error("the file descriptor {fd} given with --fd is {what}")]
    BadChannel { fd: i32, what: &'static str },
    #[error("cannot pass the tap to the caller over --fd={fd}: {}", .source.desc())]
    Send {
        fd: i32,
        #[source]
        source: Errno,
    },
}

/// A tap just created: its descriptor (the tap lives as long as some descriptor of it is open),
/// its kernel-chosen name, and whether it carries virtio-net headers.
#[derive(Debug)]
pub struct NewTap {
    pub fd: OwnedFd,
    pub name: String,
    pub vnet_hdr: bool,
}

/// Create a new tap (`tap%d`, `IFF_TAP | IFF_NO_PI`), non-persistent, with `IFF_VNET_HDR` when
/// `vnet_hdr` is asked for and the kernel offers it (`TUNGETFEATURES`). Needs `CAP_NET_ADMIN`.
pub fn create_tap(vnet_hdr: bool) -> Result<NewTap, TunError> {
    let fd = sys::open_tun().map_err(TunError::Open)?;
    let offered = sys::features(&fd).map_err(TunError::Create)?;
    let vnet_hdr = vnet_hdr && offered & IFF_VNET_HDR != 0;
    let mut flags = IFF_TAP | IFF_NO_PI;
    if vnet_hdr {
        flags |= IFF_VNET_HDR;
    }
    let name = sys::set_iff(&fd, "tap%d", flags).map_err(TunError::Create)?;
    Ok(NewTap { fd, name, vnet_hdr })
}

/// The unix socket to send the tap's descriptor over.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    number: i32,
}

impl Channel {
    /// Take the descriptor `number` passed as `--fd=N`: it must be open and a unix socket. Call
    /// this before opening anything else, so that no descriptor of ours can have that number.
    pub fn from_arg(number: i32) -> Result<Channel, TunError> {
        let bad = |what| TunError::BadChannel { fd: number, what };
        if number < 3 {
            return Err(bad("a standard stream, not QEMU's socket"));
        }
        let fd = sys::take_inherited(number).ok_or(bad("not open"))?;
        let stat = nix::sys::stat::fstat(&fd).map_err(|_| bad("not open"))?;
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        if kind != SFlag::S_IFSOCK {
            return Err(bad("not a socket"));
        }
        match nix::sys::socket::getsockname::<UnixAddr>(fd.as_raw_fd()) {
            Ok(addr) if addr_family_is_unix(&addr) => {}
            _ => return Err(bad("not a unix socket")),
        }
        Ok(Channel { fd, number })
    }

    /// Send `tap` with one byte, as `SCM_RIGHTS`: what QEMU and libvirt wait for.
    pub fn send_fd(&self, tap: BorrowedFd<'_>) -> Result<(), TunError> {
        let fds = [tap.as_raw_fd()];
        let iov = [IoSlice::new(&[0u8])];
        loop {
            match sendmsg::<UnixAddr>(
                self.fd.as_raw_fd(),
                &iov,
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(source) => {
                    return Err(TunError::Send {
                        fd: self.number,
                        source,
                    })
                }
            }
        }
    }
}

fn addr_family_is_unix(addr: &UnixAddr) -> bool {
    use nix::sys::socket::SockaddrLike;
    addr.family() == Some(AddressFamily::Unix)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::fd::IntoRawFd;

    #[test]
    fn channel_must_be_an_open_unix_socket() {
        for n in [-1, 0, 1, 2] {
            assert!(matches!(
                Channel::from_arg(n),
                Err(TunError::BadChannel { .. })
            ));
        }
        // A regular file is not a socket.
        let f = std::fs::File::open("/proc/self/status").unwrap();
        let n = f.into_raw_fd();
        let e = Channel::from_arg(n).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("the file descriptor {n} given with --fd is not a socket")
        );
        // A closed number.
        let e = Channel::from_arg(n).unwrap_err();
        assert!(e.to_string().ends_with("is not open"), "{e}");
        // A unix socketpair end: accepted, and a descriptor sent arrives with one byte.
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let ch = Channel::from_arg(a.into_raw_fd()).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        ch.send_fd(std::os::fd::AsFd::as_fd(&file)).unwrap();
        let mut buf = [0u8; 4];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = nix::sys::socket::recvmsg::<()>(
            b.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        assert_eq!(msg.bytes, 1);
        let got: Vec<_> = msg.cmsgs().unwrap().collect();
        assert!(
            matches!(&got[..], [nix::sys::socket::ControlMessageOwned::ScmRights(fds)] if fds.len() == 1)
        );
    }
}
