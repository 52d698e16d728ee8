//! The unsafe code of the tun crate: the `TUNGETFEATURES` and `TUNSETIFF` ioctls on an open
//! `/dev/net/tun` descriptor, and taking ownership of a descriptor number inherited from the
//! caller. Each is one call on memory that lives for the call.
#![allow(unsafe_code)]

use std::fs::OpenOptions;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;
use nix::libc;

/// `struct ifreq` as the tun ioctls use it: the name, then the flags (a `short`) at the start of
/// the 24-byte union.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; 22],
}

// TUNSETIFF = _IOW('T', 202, int), TUNGETFEATURES = _IOR('T', 207, unsigned int) in
// <linux/if_tun.h>. TUNSETIFF is declared with `int` but takes a `struct ifreq *`.
nix::ioctl_write_ptr_bad!(
    tunsetiff,
    nix::request_code_write!(b'T', 202, std::mem::size_of::<libc::c_int>()),
    IfReq
);
nix::ioctl_read!(tungetfeatures, b'T', 207, libc::c_uint);

/// Open `/dev/net/tun` read-write, close-on-exec.
pub(crate) fn open_tun() -> Result<OwnedFd, Errno> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/net/tun")
        .map(OwnedFd::from)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// `TUNGETFEATURES`: the `IFF_*` flags the kernel's tun driver offers.
pub(crate) fn features(tun: &OwnedFd) -> Result<u16, Errno> {
    use std::os::fd::AsRawFd;
    let mut features: libc::c_uint = 0;
    // SAFETY: `tun` is an open /dev/net/tun descriptor; TUNGETFEATURES writes one unsigned int
    // into `features`, a live local of that type.
    unsafe { tungetfeatures(tun.as_raw_fd(), &mut features) }?;
    // The flags are 16 bits wide (`ifr_flags` is a short).
    Ok((features & 0xffff) as u16)
}

/// `TUNSETIFF` with name pattern `pattern` (`tap%d`: the kernel picks the number) and `flags`.
/// Returns the kernel-chosen name.
pub(crate) fn set_iff(tun: &OwnedFd, pattern: &str, flags: u16) -> Result<String, Errno> {
    use std::os::fd::AsRawFd;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: flags as libc::c_short,
        _rest: [0; 22],
    };
    let bytes = pattern.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return Err(Errno::EINVAL);
    }
    req.name[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: `tun` is an open /dev/net/tun descriptor; TUNSETIFF reads a `struct ifreq` and
    // writes the chosen name back into it. `req` is a repr(C) struct of exactly that size and
    // layout (16-byte name, then the flags at the start of the 24-byte union), and it lives
    // until the call returns.
    unsafe { tunsetiff(tun.as_raw_fd(), &req) }?;
    let end = req
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(req.name.len());
    Ok(String::from_utf8_lossy(&req.name[..end]).into_owned())
}

/// The descriptor `number` inherited from the caller, owned from now on; `None` when it is not
/// open.
pub(crate) fn take_inherited(number: RawFd) -> Option<OwnedFd> {
    // F_GETFD succeeds exactly when the number is an open descriptor of this process.
    // SAFETY: fcntl(F_GETFD) only reads the descriptor table; any integer is a valid argument.
    let open = unsafe { libc::fcntl(number, libc::F_GETFD) } != -1;
    if !open {
        return None;
    }
    // SAFETY: `number` is open (checked just above, and nothing in this single-threaded start-up
    // closes it in between), it was inherited across exec, and no other object of this process
    // owns it: nothing opened it here, and it is taken once, before anything else is opened.
    Some(unsafe { OwnedFd::from_raw_fd(number) })
}
