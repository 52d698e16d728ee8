//! Privilege handling for the setuid-capable `qemu-ifup` / `qemu-ifdown` helpers.
//!
//! * [`gained_privilege`] — did this exec gain privilege (setuid root or file capabilities)?
//! * [`privileged_mode`] — the contract's *privileged mode*: gained privilege and the real uid is
//!   not 0.
//! * [`clear_environment`] — in privileged mode the environment is not used for anything.
//! * [`real_ids`] + [`drop_to_caller`] — keep only `CAP_NET_ADMIN`, become the caller (real
//!   uid/gid, supplementary groups untouched), set no-new-privileges, and verify all of it.
//! * [`proc_state`], [`has_net_admin`] — read-only diagnostics.
//!
//! Capabilities, the bounding set, the ambient set, keep-caps and no-new-privs are per-thread in
//! Linux, and the raw `capset(2)` used here changes only the calling thread. Everything that
//! changes process state must therefore run at the start of `main`, before any thread exists;
//! [`drop_to_caller`] refuses to run otherwise.
//!
//! All unsafe code of the workspace lives in the private `sys` module.

mod error;
mod status;
mod sys;

use nix::sys::prctl;
use nix::unistd::{
    getgid, getgroups, getresgid, getresuid, getuid, setresgid, setresuid, Gid, Uid,
};

pub use error::PrivilegeError;
pub use status::ProcState;

/// `CAP_NET_ADMIN` from `<linux/capability.h>`.
pub const CAP_NET_ADMIN: u32 = 12;
/// `CAP_SETPCAP` from `<linux/capability.h>`: needed to shrink the bounding set.
pub const CAP_SETPCAP: u32 = 8;

/// The highest capability number that fits the two 32-bit words of a version-3 `capset`.
const MAX_CAP: u32 = 63;

const fn bit(cap: u32) -> u64 {
    1 << cap
}

/// True when the kernel says we gained privilege on exec (`getauxval(AT_SECURE) != 0`): setuid
/// root, setgid, or file capabilities (or an LSM asked for secure mode).
pub fn gained_privilege() -> bool {
    sys::at_secure()
}

/// The contract's *privileged mode*: [`gained_privilege`] and the real uid is not 0.
///
/// Run by root (real uid 0), the helper is not in privileged mode even when installed setuid.
pub fn privileged_mode() -> bool {
    gained_privilege() && !getuid().is_root()
}

/// The caller's identity: real uid, real gid and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    /// As `getgroups(2)` returns them: a setuid exec leaves them as the caller's.
    pub groups: Vec<u32>,
}

/// The caller's real uid, real gid and supplementary groups.
pub fn real_ids() -> Result<Ids, PrivilegeError> {
    let groups = getgroups().map_err(|source| PrivilegeError::GetGroups { source })?;
    Ok(Ids {
        uid: getuid().as_raw(),
        gid: getgid().as_raw(),
        groups: groups.into_iter().map(Gid::as_raw).collect(),
    })
}

/// Does the effective set contain `CAP_NET_ADMIN` right now (`capget(2)` of the calling
/// thread)? False when the sets cannot be read.
pub fn has_net_admin() -> bool {
    sys::capget().is_ok_and(|caps| caps.effective & bit(CAP_NET_ADMIN) != 0)
}

/// The current process's ids, capability sets and no-new-privs flag, from `/proc/self/status`.
pub fn proc_state() -> Result<ProcState, PrivilegeError> {
    status::parse(&status::read_status()?)
}

/// Empties the process environment (`clearenv(3)`), so that nothing later — our code, a library,
/// a child — can read a value the caller chose.
///
/// Call this only at the very start of `main`, while the process is single-threaded: the
/// environment is process-wide, unsynchronised libc state, and no other thread may touch it at
/// the same time.
///
/// Unlike removing `std::env::vars_os()` keys one by one, this also removes entries std cannot
/// name or would panic on (an empty name like `=x`, or an entry without `=`), which a caller of a
/// setuid program can put in its environment.
pub fn clear_environment() {
    if sys::clearenv().is_err() {
        // glibc and musl never fail here; should a libc do so, remove what std can name.
        let keys: Vec<_> = std::env::vars_os().map(|(key, _)| key).collect();
        for key in keys {
            let bytes = key.as_encoded_bytes();
            if !bytes.is_empty() && !bytes.contains(&b'=') && !bytes.contains(&0) {
                std::env::remove_var(&key);
            }
        }
    }
}

/// The highest capability number the kernel knows: `/proc/sys/kernel/cap_last_cap`, or else the
/// last number `PR_CAPBSET_READ` accepts. Capped at [`MAX_CAP`].
fn last_cap() -> Result<u32, PrivilegeError> {
    if let Some(n) = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        return Ok(n.min(MAX_CAP));
    }
    let mut last = None;
    for cap in 0..=MAX_CAP {
        match sys::capbset_read(cap) {
            Ok(_) => last = Some(cap),
            Err(nix::errno::Errno::EINVAL) => break,
            Err(source) => return Err(PrivilegeError::LastCap { source }),
        }
    }
    last.ok_or(PrivilegeError::LastCap {
        source: nix::errno::Errno::EINVAL,
    })
}

/// Drops from the privilege gained on exec to the caller, keeping only `CAP_NET_ADMIN`.
///
/// Meant for privileged mode ([`privileged_mode`]); `ids` must be the caller's, i.e. what
/// [`real_ids`] returned (anything else is refused with [`PrivilegeError::NotTheCaller`]).
/// Must run while the process is single-threaded (refused otherwise with
/// [`PrivilegeError::NotSingleThreaded`]): capabilities are per-thread.
///
/// Steps, in this order:
/// 1. `PR_SET_KEEPCAPS 1`, so that the uid switch keeps the permitted set;
/// 2. if `CAP_SETPCAP` is effective (setuid root), drop every capability except `CAP_NET_ADMIN`
///    from the bounding set; with file capabilities (`setcap cap_net_admin+ep`) we lack
///    `CAP_SETPCAP` and leave the bounding set alone — no-new-privs makes it moot for exec;
/// 3. `setresgid(gid, gid, gid)`, then `setresuid(uid, uid, uid)`; supplementary groups stay the
///    caller's, as a setuid exec left them;
/// 4. `capset`: effective = permitted = {`CAP_NET_ADMIN`}, inheritable = {} (which also empties the
///    ambient set: ambient ⊆ permitted ∩ inheritable);
/// 5. `PR_CAP_AMBIENT_CLEAR_ALL`, `PR_SET_KEEPCAPS 0`;
/// 6. `PR_SET_NO_NEW_PRIVS 1`;
/// 7. read everything back (`capget`, `getresuid`, `getresgid`, no-new-privs, keep-caps) and
///    fail with [`PrivilegeError::DropIncomplete`] unless it is exactly as asked.
///
/// The dumpable flag is left as the kernel set it (0 after a setuid exec by default).
///
/// Fails with [`PrivilegeError::NoNetAdmin`], before changing anything, when `CAP_NET_ADMIN` is
/// not in the permitted set (e.g. a setuid copy without root owner, or a file without caps).
/// On any other error the process is in an unspecified intermediate state and must exit.
pub fn drop_to_caller(ids: &Ids) -> Result<(), PrivilegeError> {
    let threads = status::threads(&status::read_status()?)?;
    if threads != 1 {
        return Err(PrivilegeError::NotSingleThreaded { threads });
    }
    let (real_uid, real_gid) = (getuid().as_raw(), getgid().as_raw());
    if ids.uid != real_uid || ids.gid != real_gid {
        return Err(PrivilegeError::NotTheCaller {
            uid: ids.uid,
            gid: ids.gid,
            real_uid,
            real_gid,
        });
    }
    let caps = sys::capget().map_err(|source| PrivilegeError::GetCaps { source })?;
    if caps.permitted & bit(CAP_NET_ADMIN) == 0 {
        return Err(PrivilegeError::NoNetAdmin);
    }
    let shrink_bounding = caps.effective & bit(CAP_SETPCAP) != 0;
    let last_cap = if shrink_bounding { last_cap()? } else { 0 };

    // 1.
    prctl::set_keepcaps(true).map_err(|source| PrivilegeError::KeepCaps { source })?;

    // 2.
    if shrink_bounding {
        for cap in (0..=last_cap).filter(|&cap| cap != CAP_NET_ADMIN) {
            sys::capbset_drop(cap)
                .map_err(|source| PrivilegeError::DropBounding { cap, source })?;
        }
    }

    // 3.
    let gid = Gid::from_raw(ids.gid);
    setresgid(gid, gid, gid).map_err(|source| PrivilegeError::SetGid {
        gid: ids.gid,
        source,
    })?;
    let uid = Uid::from_raw(ids.uid);
    setresuid(uid, uid, uid).map_err(|source| PrivilegeError::SetUid {
        uid: ids.uid,
        source,
    })?;

    // 4.
    let wanted = sys::Caps {
        effective: bit(CAP_NET_ADMIN),
        permitted: bit(CAP_NET_ADMIN),
        inheritable: 0,
    };
    sys::capset(&wanted).map_err(|source| PrivilegeError::SetCaps { source })?;

    // 5.
    sys::ambient_clear_all().map_err(|source| PrivilegeError::ClearAmbient { source })?;
    prctl::set_keepcaps(false).map_err(|source| PrivilegeError::KeepCaps { source })?;

    // 6.
    prctl::set_no_new_privs().map_err(|source| PrivilegeError::NoNewPrivs { source })?;

    // 7.
    verify(ids, &wanted)
}

/// Step 7 of [`drop_to_caller`]: the kernel's view must match what was asked for.
fn verify(ids: &Ids, wanted: &sys::Caps) -> Result<(), PrivilegeError> {
    let incomplete = |detail: String| Err(PrivilegeError::DropIncomplete { detail });

    let caps = sys::capget().map_err(|source| PrivilegeError::GetCaps { source })?;
    if caps != *wanted {
        return incomplete(format!(
            "capabilities are effective {:016x} permitted {:016x} inheritable {:016x}, expected \
             CAP_NET_ADMIN alone ({:016x}) and no inheritable",
            caps.effective,
            caps.permitted,
            caps.inheritable,
            bit(CAP_NET_ADMIN)
        ));
    }
    let r = getresuid().map_err(|source| PrivilegeError::GetIds { source })?;
    let uids = [r.real, r.effective, r.saved].map(Uid::as_raw);
    if uids != [ids.uid; 3] {
        return incomplete(format!(
            "uids are {}/{}/{}, expected {}",
            uids[0], uids[1], uids[2], ids.uid
        ));
    }
    let r = getresgid().map_err(|source| PrivilegeError::GetIds { source })?;
    let gids = [r.real, r.effective, r.saved].map(Gid::as_raw);
    if gids != [ids.gid; 3] {
        return incomplete(format!(
            "gids are {}/{}/{}, expected {}",
            gids[0], gids[1], gids[2], ids.gid
        ));
    }
    if !prctl::get_no_new_privs().map_err(|source| PrivilegeError::NoNewPrivs { source })? {
        return incomplete("no-new-privileges is not set".to_owned());
    }
    if prctl::get_keepcaps().map_err(|source| PrivilegeError::KeepCaps { source })? {
        return incomplete("keep-capabilities is still set".to_owned());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Read-only checks of this (unprivileged-exec) test process; everything that changes process
    // state is tested through `examples/drop_probe.rs` from `tests/setuid.rs`.

    #[test]
    fn test_process_did_not_gain_privilege() {
        assert!(!gained_privilege());
        assert!(!privileged_mode());
    }

    #[test]
    fn real_ids_match_the_kernel() {
        let ids = real_ids().unwrap();
        let st = proc_state().unwrap();
        assert_eq!((ids.uid, ids.gid), (st.ruid, st.rgid));
    }

    #[test]
    fn has_net_admin_agrees_with_proc() {
        let st = proc_state().unwrap();
        assert_eq!(has_net_admin(), st.cap_eff & bit(CAP_NET_ADMIN) != 0);
    }

    #[test]
    fn last_cap_is_plausible() {
        let last = last_cap().unwrap();
        // CAP_AUDIT_READ (37) exists since Linux 3.16.
        assert!((37..=MAX_CAP).contains(&last), "{last}");
        assert!(sys::capbset_read(last).is_ok());
        assert_eq!(sys::capbset_read(last + 1), Err(nix::errno::Errno::EINVAL));
    }

    #[test]
    fn drop_refuses_other_ids_without_changing_anything() {
        let mut ids = real_ids().unwrap();
        ids.uid = ids.uid.wrapping_add(1);
        let before = proc_state().unwrap();
        // libtest runs this on a second thread, so this may also be NotSingleThreaded: either
        // way nothing may change.
        let err = drop_to_caller(&ids).unwrap_err();
        assert!(
            matches!(
                err,
                PrivilegeError::NotTheCaller { .. } | PrivilegeError::NotSingleThreaded { .. }
            ),
            "{err}"
        );
        assert_eq!(proc_state().unwrap(), before);
    }

    #[test]
    fn messages_read_as_one_line() {
        let e = PrivilegeError::SetUid {
            uid: 1000,
            source: nix::errno::Errno::EPERM,
        };
        assert_eq!(
            e.to_string(),
            "cannot switch to the caller's uid 1000: Operation not permitted"
        );
        assert_eq!(
            PrivilegeError::NoNetAdmin.to_string(),
            "the helper was started with privilege but without CAP_NET_ADMIN: install it setuid \
             root or with `setcap cap_net_admin+ep`"
        );
        let e = PrivilegeError::NotSingleThreaded { threads: 3 };
        assert!(!e.to_string().contains('\n'));
    }
}
