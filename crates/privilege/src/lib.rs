//! Privilege handling for the setuid-capable `qemu-ifup` / `qemu-ifdown` helpers.
//!
//! * [`start`] — how the process was started: by root, with privilege gained on exec (setuid
//!   root or file capabilities: *privileged mode* in qemu-ifup-rs(8)), or as an ordinary process of a
//!   user; [`classify`] is the pure rule behind it.
//! * [`clear_environment`] — in privileged mode the environment is not used for anything.
//! * [`real_ids`] + [`drop_to_caller`] — keep only `CAP_NET_ADMIN`, become the caller (real
//!   uid/gid, supplementary groups untouched), set no-new-privileges, and verify all of it.
//! * [`become_caller`] — for a process that gained something on exec but not `CAP_NET_ADMIN`:
//!   give it all up and run as the caller.
//! * [`drop_all_capabilities`] — before the first byte of output, hold nothing.
//! * [`why_unprivileged`] — for the error message: why an install meant to gain privilege did not.
//! * [`proc_state`], [`has_net_admin`] — read-only diagnostics.
//!
//! Capabilities, the bounding set, the ambient set, keep-caps and no-new-privs are per-thread in
//! Linux, and the raw `capset(2)` used here changes only the calling thread. Everything that
//! changes process state must therefore run at the start of `main`, before any thread exists;
//! the functions that change it refuse to run otherwise.
//!
//! All unsafe code of the workspace's binaries lives in the private `sys` module.

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
/// root, setgid, or file capabilities (or an LSM asked for secure mode). Under no-new-privileges
/// a setuid exec does not set it, but a file-capability exec still does, with the capabilities
/// withheld.
pub fn gained_privilege() -> bool {
    sys::at_secure()
}

/// How the process was started, as far as privilege goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The real uid is 0: root runs us (even a setuid copy run by root is just root).
    Root,
    /// *Privileged mode* (qemu-ifup-rs(8)): the exec gained privilege (`AT_SECURE`: setuid root or
    /// file capabilities) and the caller is not root. The environment and argv are the caller's.
    /// `net_admin`: `CAP_NET_ADMIN` came with it, and [`drop_to_caller`] keeps it; without it
    /// (file capabilities under no-new-privileges, a setuid copy owned by another user),
    /// [`become_caller`] gives up whatever else came.
    Privileged { net_admin: bool },
    /// An ordinary process of a user other than root (or one that inherited its capabilities,
    /// which are then the caller's own).
    Unprivileged,
}

/// What [`classify`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Observed {
    real_uid: u32,
    /// `AT_SECURE`.
    at_secure: bool,
    /// `CAP_NET_ADMIN` is in the permitted set.
    net_admin: bool,
}

/// The rule of [`start`]: root by the real uid; privileged mode when the exec gained privilege;
/// otherwise an ordinary process.
fn classify(o: &Observed) -> Start {
    if o.real_uid == 0 {
        Start::Root
    } else if o.at_secure {
        Start::Privileged {
            net_admin: o.net_admin,
        }
    } else {
        Start::Unprivileged
    }
}

/// How this process was started: [`classify`] of the real uid, `AT_SECURE` and the permitted
/// capabilities.
pub fn start() -> Result<Start, PrivilegeError> {
    let caps = sys::capget().map_err(|source| PrivilegeError::GetCaps { source })?;
    Ok(classify(&Observed {
        real_uid: getuid().as_raw(),
        at_secure: sys::at_secure(),
        net_admin: caps.permitted & bit(CAP_NET_ADMIN) != 0,
    }))
}

/// Why the kernel granted no privilege to a helper that was installed to gain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotGranted {
    /// The process runs with no-new-privileges, under which the kernel ignores the setuid bit
    /// and file capabilities.
    NoNewPrivileges,
    /// The executable is on a filesystem mounted `nosuid`, where the same holds.
    NosuidMount { exe: std::path::PathBuf },
    /// The exec gained privilege, but `CAP_NET_ADMIN` is not among it.
    WithoutNetAdmin,
}

/// Whether no-new-privileges is set on this process now. Read it at start, before the helper
/// sets it on itself, to know whether the caller had it.
pub fn no_new_privs() -> bool {
    prctl::get_no_new_privs().unwrap_or(false)
}

/// For a process without `CAP_NET_ADMIN`: why, if the executable is installed setuid root or
/// with file capabilities, or the exec gained privilege (`None` for a plain install, whose fix is
/// to install it so). `no_new_privs_at_start`: [`no_new_privs`] as read at start — the helper
/// sets no-new-privileges on itself when it drops, so reading it now would always say yes.
pub fn why_unprivileged(no_new_privs_at_start: bool) -> Option<NotGranted> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let installed = is_setuid_root(&exe) || sys::has_file_capabilities(&exe);
    if no_new_privs_at_start && (installed || sys::at_secure()) {
        return Some(NotGranted::NoNewPrivileges);
    }
    if installed && on_nosuid_mount(&exe) {
        return Some(NotGranted::NosuidMount { exe });
    }
    (installed || sys::at_secure()).then_some(NotGranted::WithoutNetAdmin)
}

impl std::fmt::Display for NotGranted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotGranted::NoNewPrivileges => f.write_str(
                "the helper is installed setuid root or with file capabilities, but this process \
                 runs with no-new-privileges (NoNewPrivs in /proc/PID/status: systemd's \
                 NoNewPrivileges=, `setpriv --no-new-privs`, some container runtimes), under \
                 which the kernel grants neither: start QEMU without it, or as root",
            ),
            NotGranted::NosuidMount { exe } => write!(
                f,
                "the helper is installed setuid root or with file capabilities, but {} is on a \
                 filesystem mounted nosuid, where the kernel grants neither: install it on \
                 another filesystem (/usr/libexec)",
                exe.display()
            ),
            NotGranted::WithoutNetAdmin => f.write_str(
                "the helper gained privilege on exec, but not CAP_NET_ADMIN: install it setuid \
                 root (owned by root) or with `setcap cap_net_admin+ep`",
            ),
        }
    }
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
/// The environment is process-wide, unsynchronised libc state: this refuses to run
/// ([`PrivilegeError::NotSingleThreaded`]) unless the process has exactly one thread, which is
/// the calling one, so no other thread can touch it at the same time (nothing else in the
/// process can start a thread while this one is busy here).
///
/// Unlike removing `std::env::vars_os()` keys one by one, this also removes entries std cannot
/// name or would panic on (an empty name like `=x`, or an entry without `=`), which a caller of a
/// setuid program can put in its environment.
pub fn clear_environment() -> Result<(), PrivilegeError> {
    let one = require_single_thread()?;
    sys::clearenv(&one).map_err(|source| PrivilegeError::ClearEnv { source })
}

/// Fails unless the process has exactly one thread (`Threads:` of `/proc/self/status`).
fn require_single_thread() -> Result<sys::OneThread, PrivilegeError> {
    let threads = status::threads(&status::read_status()?)?;
    if threads != 1 {
        return Err(PrivilegeError::NotSingleThreaded { threads });
    }
    Ok(sys::OneThread::seen())
}

/// Whether `path` is a setuid file owned by root.
fn is_setuid_root(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o4000 != 0)
}

/// Whether `path` is on a filesystem mounted `nosuid`.
fn on_nosuid_mount(path: &std::path::Path) -> bool {
    use nix::sys::statvfs::{statvfs, FsFlags};
    statvfs(path).is_ok_and(|v| v.flags().contains(FsFlags::ST_NOSUID))
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
/// Meant for privileged mode ([`Start::Privileged`] with `net_admin`); `ids` must be the caller's, i.e. what
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
    require_single_thread()?;
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
    switch_ids(ids)?;

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

/// For [`Start::Privileged`] without `CAP_NET_ADMIN`: the exec gained something (another user's
/// uid, capabilities other than `CAP_NET_ADMIN`) that the helper has no use for. Become exactly
/// the caller: real, effective and saved ids the real ones, no capabilities, no-new-privileges.
pub fn become_caller() -> Result<(), PrivilegeError> {
    require_single_thread()?;
    switch_ids(&real_ids()?)?;
    drop_all_capabilities()?;
    prctl::set_no_new_privs().map_err(|source| PrivilegeError::NoNewPrivs { source })
}

/// All three gids, then all three uids, to the caller's (`ids`); the supplementary groups stay
/// as the exec left them (the caller's).
fn switch_ids(ids: &Ids) -> Result<(), PrivilegeError> {
    let gid = Gid::from_raw(ids.gid);
    setresgid(gid, gid, gid).map_err(|source| PrivilegeError::SetGid {
        gid: ids.gid,
        source,
    })?;
    let uid = Uid::from_raw(ids.uid);
    setresuid(uid, uid, uid).map_err(|source| PrivilegeError::SetUid {
        uid: ids.uid,
        source,
    })
}

/// Empties the effective, permitted and inheritable sets of the calling thread (and so the
/// ambient set), and checks that they are empty. Nothing can bring them back: after this the
/// process holds no privilege at all. Used before the first byte of output, so that a caller
/// who blocks our stdout or stderr holds up an unprivileged process only.
pub fn drop_all_capabilities() -> Result<(), PrivilegeError> {
    let none = sys::Caps {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    };
    sys::capset(&none).map_err(|source| PrivilegeError::SetCaps { source })?;
    let caps = sys::capget().map_err(|source| PrivilegeError::GetCaps { source })?;
    if caps != none {
        return Err(PrivilegeError::DropIncomplete {
            detail: format!(
                "capabilities are effective {:016x} permitted {:016x} after dropping them all",
                caps.effective, caps.permitted
            ),
        });
    }
    Ok(())
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
        assert_eq!(
            start().unwrap(),
            if getuid().is_root() {
                Start::Root
            } else {
                Start::Unprivileged
            }
        );
    }

    #[test]
    fn classification() {
        let o = |real_uid, at_secure, net_admin| Observed {
            real_uid,
            at_secure,
            net_admin,
        };
        // Root is root, however it was started.
        for (s, n) in [(false, false), (true, false), (false, true), (true, true)] {
            assert_eq!(classify(&o(0, s, n)), Start::Root);
        }
        assert_eq!(
            classify(&o(1000, true, true)),
            Start::Privileged { net_admin: true }
        );
        // Gained something, but not CAP_NET_ADMIN (file caps under no-new-privs, a setuid copy
        // owned by another user): still privileged mode, with nothing to keep.
        assert_eq!(
            classify(&o(1000, true, false)),
            Start::Privileged { net_admin: false }
        );
        // CAP_NET_ADMIN without AT_SECURE is inherited (ambient), not gained on exec: the
        // caller's own, nothing for the helper to guard.
        assert_eq!(classify(&o(1000, false, true)), Start::Unprivileged);
        assert_eq!(classify(&o(1000, false, false)), Start::Unprivileged);
    }

    #[test]
    fn environment_is_not_cleared_from_a_threaded_process() {
        // libtest runs tests on threads of their own: more than one thread.
        let before = std::env::vars_os().count();
        assert!(matches!(
            clear_environment(),
            Err(PrivilegeError::NotSingleThreaded { .. })
        ));
        assert_eq!(std::env::vars_os().count(), before);
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
    fn drop_refuses_to_run_threaded_without_changing_anything() {
        // libtest runs this on a second thread: refused before anything is looked at. The
        // other-ids guard is tested in a single-threaded probe (tests/setuid.rs).
        let ids = real_ids().unwrap();
        let before = proc_state().unwrap();
        let err = drop_to_caller(&ids).unwrap_err();
        assert!(
            matches!(err, PrivilegeError::NotSingleThreaded { .. }),
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
        for why in [
            NotGranted::NoNewPrivileges,
            NotGranted::NosuidMount {
                exe: "/opt/x/qemu-ifup".into(),
            },
            NotGranted::WithoutNetAdmin,
        ] {
            let text = why.to_string();
            assert!(!text.contains('\n'), "{text}");
        }
        assert!(NotGranted::NoNewPrivileges
            .to_string()
            .contains("no-new-privileges"));
        assert!(NotGranted::NosuidMount {
            exe: "/opt/x/qemu-ifup".into()
        }
        .to_string()
        .contains("/opt/x/qemu-ifup is on a filesystem mounted nosuid"));
        let e = PrivilegeError::NotSingleThreaded { threads: 3 };
        assert!(!e.to_string().contains('\n'));
    }
}
