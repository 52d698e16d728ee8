//! Whose tap is it: the kernel's rule for opening an existing tap without `CAP_NET_ADMIN`, and
//! the rule privileged mode applies, built on it.
//!
//! In `drivers/net/tun.c`, `tun_set_iff()` lets a process attach to an existing tap unless
//! `tun_not_capable()` (then `-EPERM`):
//!
//! ```text
//! ((owner set && euid != owner) || (group set && !in_egroup_p(group))) && !CAP_NET_ADMIN
//! ```
//!
//! so without `CAP_NET_ADMIN` the caller needs the owner to be unset or its own, **and** the group
//! to be unset or one of its groups; a tap with neither set is open to everyone. Linux 6.13
//! (commit 3ca459eaba1b, "tun: fix group permission check") briefly changed this to "owner set
//! and its own, **or** group set and one of its groups" (nothing set: nobody); commit a70c7b3cbc06
//! reverted it in 6.14-rc2 and in the stable releases that had taken it. The tests write both
//! rules out (`kernel_may_open`, `linux_6_13_may_open`) and check the helper's rule against them.
//!
//! The helper acts on a tap for a caller only when **both** would let the caller open it
//! ([`tap_is_callers`]): the first rule, plus "an owner or a group is set". A tap nobody claimed is
//! root's: the kernel's "anyone may open it" is not a grant from root.

use std::fmt;

use crate::source::Caller;

/// The owner and group the kernel records for a tap (`IFLA_TUN_OWNER`, `IFLA_TUN_GROUP`, which
/// it reports only when set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapOwner {
    pub owner: Option<u32>,
    pub group: Option<u32>,
}

/// Why a tap is not the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCallers {
    /// Neither an owner nor a group is set: root's only.
    Unclaimed,
    /// The owner is another user.
    Owner { owner: u32 },
    /// The group is not one of the caller's groups (whoever the owner is).
    Group { group: u32 },
}

impl fmt::Display for NotCallers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotCallers::Unclaimed => f.write_str(
                "it has no owner and no group, so it is root's only (create it with `ip tuntap \
                 add dev NAME mode tap user USER`)",
            ),
            NotCallers::Owner { owner } => write!(f, "it belongs to uid {owner}"),
            NotCallers::Group { group } => write!(
                f,
                "its group {group} is not one of the caller's groups, so the kernel would not let \
                 the caller open it either"
            ),
        }
    }
}

/// The tap is the caller's when the caller could open it under the rules of every kernel (both
/// rules of this module's doc): an owner or a group is set, the owner (if set) is the caller, and
/// the group (if set) is one of the caller's groups.
pub fn tap_is_callers(tap: TapOwner, caller: &Caller) -> Result<(), NotCallers> {
    match (tap.owner, tap.group) {
        (None, None) => Err(NotCallers::Unclaimed),
        (Some(owner), _) if owner != caller.uid => Err(NotCallers::Owner { owner }),
        (_, Some(group)) if !caller.in_group(group) => Err(NotCallers::Group { group }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `!tun_not_capable()` for a caller without `CAP_NET_ADMIN`, as in every kernel but 6.13:
    /// (no owner, or the caller's uid) and (no group, or one of the caller's groups).
    fn kernel_may_open(tap: TapOwner, caller: &Caller) -> bool {
        tap.owner.map_or(true, |o| o == caller.uid)
            && tap.group.map_or(true, |g| caller.in_group(g))
    }

    /// `tun_capable()` of Linux 6.13 for a caller without `CAP_NET_ADMIN`: (owner set and the
    /// caller's uid) or (group set and one of the caller's groups).
    fn linux_6_13_may_open(tap: TapOwner, caller: &Caller) -> bool {
        tap.owner == Some(caller.uid) || tap.group.is_some_and(|g| caller.in_group(g))
    }

    const ME: u32 = 1000;
    const MY_GID: u32 = 1000;
    const KVM: u32 = 27;
    const OTHER: u32 = 1001;
    const OTHER_GROUP: u32 = 2000;

    /// uid 1000, primary group 1000, supplementary group kvm (27).
    fn me() -> Caller {
        Caller {
            uid: ME,
            gid: MY_GID,
            groups: vec![KVM],
        }
    }

    /// Every owner (unset, the caller, another user) against every group (unset, the caller's
    /// primary group, a supplementary group, a group the caller is not in), with the expected
    /// answer of each rule written out.
    #[test]
    fn the_whole_table() {
        use NotCallers::*;
        let ok = Ok(());
        #[rustfmt::skip]
        type Row = (Option<u32>, Option<u32>, bool, bool, Result<(), NotCallers>);
        let table: [Row; 12] = [
            // owner       group              kernel  6.13   helper
            (None, None, true, false, Err(Unclaimed)),
            (None, Some(MY_GID), true, true, ok),
            (None, Some(KVM), true, true, ok),
            (
                None,
                Some(OTHER_GROUP),
                false,
                false,
                Err(Group { group: OTHER_GROUP }),
            ),
            (Some(ME), None, true, true, ok),
            (Some(ME), Some(MY_GID), true, true, ok),
            (Some(ME), Some(KVM), true, true, ok),
            // The owner is the caller but the group is not the caller's: refused by the kernel
            // (not by 6.13); the helper follows the stricter.
            (
                Some(ME),
                Some(OTHER_GROUP),
                false,
                true,
                Err(Group { group: OTHER_GROUP }),
            ),
            (Some(OTHER), None, false, false, Err(Owner { owner: OTHER })),
            // Another user's tap in a group the caller shares (finding: `u2` in kvm must not
            // take `u1`'s tap): refused by the kernel (not by 6.13).
            (
                Some(OTHER),
                Some(MY_GID),
                false,
                true,
                Err(Owner { owner: OTHER }),
            ),
            (
                Some(OTHER),
                Some(KVM),
                false,
                true,
                Err(Owner { owner: OTHER }),
            ),
            (
                Some(OTHER),
                Some(OTHER_GROUP),
                false,
                false,
                Err(Owner { owner: OTHER }),
            ),
        ];
        for (owner, group, kernel, linux_6_13, helper) in table {
            let tap = TapOwner { owner, group };
            let at = format!("owner {owner:?} group {group:?}");
            assert_eq!(kernel_may_open(tap, &me()), kernel, "kernel: {at}");
            assert_eq!(linux_6_13_may_open(tap, &me()), linux_6_13, "6.13: {at}");
            assert_eq!(tap_is_callers(tap, &me()), helper, "helper: {at}");
            // The helper's rule is exactly "both kernels would let the caller open it".
            assert_eq!(helper.is_ok(), kernel && linux_6_13, "intersection: {at}");
        }
    }

    /// The rule is the same for every caller shape: no supplementary groups, the primary group
    /// listed again among them, the tap's group as the primary group only.
    #[test]
    fn helper_rule_is_the_intersection_for_many_callers() {
        let ids = [0u32, 5, 27, 1000, 1001, u32::MAX - 1];
        let callers = [
            Caller {
                uid: 1000,
                gid: 1000,
                groups: vec![],
            },
            Caller {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 27, 5],
            },
            Caller {
                uid: 5,
                gid: 27,
                groups: vec![],
            },
        ];
        for caller in &callers {
            for owner in ids.iter().copied().map(Some).chain([None]) {
                for group in ids.iter().copied().map(Some).chain([None]) {
                    let tap = TapOwner { owner, group };
                    assert_eq!(
                        tap_is_callers(tap, caller).is_ok(),
                        kernel_may_open(tap, caller) && linux_6_13_may_open(tap, caller),
                        "{caller:?} {tap:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn reasons_read_as_one_line() {
        for r in [
            NotCallers::Unclaimed,
            NotCallers::Owner { owner: 7 },
            NotCallers::Group { group: 8 },
        ] {
            let s = r.to_string();
            assert!(!s.contains('\n'), "{s}");
        }
        assert_eq!(
            NotCallers::Owner { owner: 7 }.to_string(),
            "it belongs to uid 7"
        );
    }
}
