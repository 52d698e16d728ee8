//! The testkit's only unsafe code, kept together and small: the tun ioctls (`TUNSETIFF` to attach
//! to a tap, `TUNGETIFF` to ask a tap fd for its name and flags), placing a descriptor at a fixed
//! number in a child before it execs (what QEMU and libvirt do with the socket they give a bridge
//! helper), and taking ownership of a descriptor received with `SCM_RIGHTS`.
//!
//! Everything here is a thin wrapper: no policy, no panics; callers decide what a failure means.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use nix::libc;

/// `IFF_TAP`: a layer-2 tap, not a tun.
pub(crate) const IFF_TAP: libc::c_short = 0x0002;
/// `IFF_NO_PI`: frames without the 4-byte packet-information header.
pub(crate) const IFF_NO_PI: libc::c_short = 0x1000;
/// `IFF_VNET_HDR`: frames carry a `virtio_net_hdr` (what a bridge helper's `--use-vnet` asks for).
pub(crate) const IFF_VNET_HDR: libc::c_short = 0x4000;

/// `TUNSETIFF`, `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `TUNGETIFF`, `_IOR('T', 210, unsigned int)`.
const TUNGETIFF: libc::c_ulong = 0x8004_54d2;

/// `struct ifreq` as the tun ioctls use it: the name, then the flags (a `short`) at the start of
/// the 24-byte union.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; 22],
}

/// `TUNSETIFF` on `fd` (an open `/dev/net/tun`) with `name` (shorter than `IFNAMSIZ`, checked by
/// the caller) and `flags`.
pub(crate) fn tun_set_iff(fd: BorrowedFd<'_>, name: &str, flags: libc::c_short) -> io::Result<()> {
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags,
        _rest: [0; 22],
    };
    let len = name.len().min(libc::IFNAMSIZ - 1);
    req.name[..len].copy_from_slice(&name.as_bytes()[..len]);
    // SAFETY: TUNSETIFF reads a `struct ifreq` (and may write the name back into it); `req` is a
    // repr(C) struct of exactly that size and layout (16-byte name, then the flags at the start
    // of the 24-byte union), it lives until the call returns, and `fd` is a borrowed, open
    // descriptor (the kernel rejects one that is not /dev/net/tun).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TUNGETIFF` on `fd`: the interface's name (bytes up to the first NUL) and its tun flags
/// (`IFF_TAP`, `IFF_NO_PI`, `IFF_VNET_HDR`, …).
pub(crate) fn tun_get_iff(fd: BorrowedFd<'_>) -> io::Result<(Vec<u8>, libc::c_short)> {
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _rest: [0; 22],
    };
    // SAFETY: TUNGETIFF writes a `struct ifreq` (name and flags) into the buffer it is given;
    // `req` is a repr(C) struct of exactly that size and layout, it lives until the call
    // returns, and `fd` is a borrowed, open descriptor (the kernel answers EBADFD or ENOTTY for
    // one that is not an attached tun/tap).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNGETIFF as _, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let end = req
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(libc::IFNAMSIZ);
    Ok((req.name[..end].to_vec(), req.flags))
}

/// Spawns `cmd` with `fd` open in the child as descriptor number `target` (not close-on-exec
/// there, so it survives every exec down to the program at the end of a wrapper chain), as QEMU
/// and libvirt pass a bridge helper its end of the socket pair. `fd` itself stays close-on-exec in
/// this process, so children other threads spawn meanwhile never inherit it; it is closed here
/// once the child is started (the child holds its own copy).
pub fn spawn_with_fd(mut cmd: Command, fd: OwnedFd, target: RawFd) -> io::Result<Child> {
    assert!(
        target > 2,
        "descriptor {target} is one of stdin/stdout/stderr"
    );
    let src = fd.as_raw_fd();
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: it calls only dup2 and fcntl (both are) and allocates nothing. `src` is
    // open in the child because `fd` is alive in this process until `spawn` has returned (it is
    // dropped below, after the fork).
    unsafe {
        cmd.pre_exec(move || {
            if src == target {
                let flags = libc::fcntl(target, libc::F_GETFD);
                if flags < 0 || libc::fcntl(target, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(src, target) < 0 {
                // dup2 leaves the new descriptor without FD_CLOEXEC.
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(fd);
    child
}

/// Takes ownership of a descriptor the kernel just installed in this process with `SCM_RIGHTS`.
/// Callers pass each received descriptor exactly once.
pub(crate) fn own_received_fd(raw: RawFd) -> OwnedFd {
    assert!(raw >= 0, "received descriptor {raw}");
    // SAFETY: `raw` comes from an `SCM_RIGHTS` control message that recvmsg just returned: the
    // kernel installed it in this process's table for us, nothing else knows or owns it, and the
    // caller hands each one over once, so the OwnedFd is its only owner and closes it once.
    unsafe { OwnedFd::from_raw_fd(raw) }
}
