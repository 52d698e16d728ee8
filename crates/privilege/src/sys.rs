//! The only unsafe code of the workspace: thin wrappers around the few calls that neither std nor
//! nix offer (`getauxval`, `capget`/`capset`, the capability `prctl`s, `clearenv`, `getxattr`).
//!
//! Every wrapper is a single syscall or libc call with plain-integer arguments or pointers to
//! locals; no wrapper keeps a pointer past the call. All of them act on the calling thread only
//! (capabilities, bounding set and ambient set are per-thread in Linux), which is why
//! [`crate::drop_to_caller`] insists on a single-threaded process.
#![allow(unsafe_code)]

use nix::errno::Errno;

/// `_LINUX_CAPABILITY_VERSION_3` from `<linux/capability.h>`: 64-bit sets as two 32-bit words.
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`; version 3 takes an array of two (low word, high word).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The three capability sets of the calling thread, as 64-bit masks (bit N = capability N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    pub(crate) effective: u64,
    pub(crate) permitted: u64,
    pub(crate) inheritable: u64,
}

fn join(low: u32, high: u32) -> u64 {
    u64::from(low) | (u64::from(high) << 32)
}

fn split(mask: u64) -> (u32, u32) {
    // Truncation is the point: the low and the high 32 bits.
    #[allow(clippy::cast_possible_truncation)]
    (mask as u32, (mask >> 32) as u32)
}

/// `getauxval(AT_SECURE) != 0`: the kernel (or the LSM) decided this exec gained privilege.
pub(crate) fn at_secure() -> bool {
    // SAFETY: getauxval takes an integer, reads the process's auxiliary vector (set up by the
    // kernel before main) and returns an integer; it has no preconditions.
    let value = unsafe { libc::getauxval(libc::AT_SECURE) };
    value != 0
}

/// `capget(2)` for the calling thread.
pub(crate) fn capget() -> Result<Caps, Errno> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: `header` and `data` are live, properly aligned locals of the layout the kernel
    // expects for version 3 (one header, two data structs); the kernel writes only into them.
    let res = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    Errno::result(res)?;
    if header.version != LINUX_CAPABILITY_VERSION_3 {
        // The kernel rewrote the version: it does not speak version 3 (pre-2.6.26).
        return Err(Errno::EINVAL);
    }
    Ok(Caps {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// `capset(2)` for the calling thread.
pub(crate) fn capset(caps: &Caps) -> Result<(), Errno> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let (eff_lo, eff_hi) = split(caps.effective);
    let (prm_lo, prm_hi) = split(caps.permitted);
    let (inh_lo, inh_hi) = split(caps.inheritable);
    let data = [
        CapData {
            effective: eff_lo,
            permitted: prm_lo,
            inheritable: inh_lo,
        },
        CapData {
            effective: eff_hi,
            permitted: prm_hi,
            inheritable: inh_hi,
        },
    ];
    // SAFETY: `header` and `data` are live, properly aligned locals of the version-3 layout; the
    // kernel reads `data` and may write only the header's version field.
    let res = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    Errno::result(res).map(drop)
}

/// `prctl(PR_CAPBSET_READ, cap)`: is `cap` in the bounding set? `EINVAL` when `cap` is beyond
/// the kernel's last capability.
pub(crate) fn capbset_read(cap: u32) -> Result<bool, Errno> {
    // SAFETY: PR_CAPBSET_READ takes an integer argument and only reads the thread's bounding set.
    let res = unsafe {
        libc::prctl(
            libc::PR_CAPBSET_READ,
            libc::c_ulong::from(cap),
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(res).map(|r| r == 1)
}

/// `prctl(PR_CAPBSET_DROP, cap)`: needs `CAP_SETPCAP` in the effective set.
pub(crate) fn capbset_drop(cap: u32) -> Result<(), Errno> {
    // SAFETY: PR_CAPBSET_DROP takes an integer argument and changes only the thread's bounding
    // set; no memory is passed.
    let res = unsafe {
        libc::prctl(
            libc::PR_CAPBSET_DROP,
            libc::c_ulong::from(cap),
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(res).map(drop)
}

/// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)`: always permitted.
pub(crate) fn ambient_clear_all() -> Result<(), Errno> {
    // SAFETY: integer arguments only; the call changes only the thread's ambient set. The unused
    // arguments must be zero, which they are.
    let res = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(res).map(drop)
}

/// Proof that the process had a single thread when it was made: only
/// `crate::require_single_thread` makes one, right after reading `Threads: 1` from
/// `/proc/self/status`. Only the calling thread could start another one, and it is busy with the
/// caller of the function that takes this.
pub(crate) struct OneThread(());

impl OneThread {
    /// Only for `crate::require_single_thread`, after it has seen `Threads: 1`.
    pub(crate) fn seen() -> OneThread {
        OneThread(())
    }
}

/// `clearenv(3)`: empties the process environment in one step, including entries std cannot
/// name (`=x`, entries without `=`) and whose removal through `std::env::remove_var` would panic.
pub(crate) fn clearenv(_one_thread: &OneThread) -> Result<(), Errno> {
    // SAFETY: the environment is unsynchronised process-wide state; `OneThread` proves the
    // process has no other thread that could read or write it at the same time. clearenv only
    // sets `environ` to NULL, which std's env functions handle.
    let res = unsafe { libc::clearenv() };
    Errno::result(res).map(drop)
}

/// Whether the file at `path` carries file capabilities (a `security.capability` attribute).
pub(crate) fn has_file_capabilities(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let name = c"security.capability";
    // SAFETY: both pointers are to live NUL-terminated strings; with a NULL buffer and size 0,
    // getxattr only returns the attribute's size and writes nothing.
    let res = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    res > 0
}

#[cfg(test)]
mod tests {
    use super::{join, split};

    #[test]
    fn split_and_join_are_inverse() {
        for mask in [0, 1 << 12, 0x1ff_feff_ffff, u64::MAX, 1 << 40] {
            let (lo, hi) = split(mask);
            assert_eq!(join(lo, hi), mask);
        }
        assert_eq!(split(1 << 12), (1 << 12, 0));
        assert_eq!(split(1 << 40), (0, 1 << 8));
    }
}
