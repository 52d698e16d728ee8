//! Every decision of both programs, as pure functions over what the kernel reported (links,
//! routes), the caller, the config and the ACL: which tap, which bridge, and whether this caller
//! may have it. Every refusal and its message is made here. The lookups that feed these
//! functions are in `flow.rs`; nothing here does I/O.
//!
//! The rules (docs/DESIGN.md has them with their reasons):
//! - the tap is looked up by the name QEMU passed, and from then on only the kernel's name of it
//!   counts: rule choice, messages and logs never use an alternative name from argv;
//! - it must be a tap (kind `tun`, tun type tap);
//! - privileged mode: it must be the caller's (`ifup_policy::tap_is_callers`, the kernel's own
//!   rule), the bridge must be one the ACL allows, and a tap on one bridge is never moved to
//!   another; `qemu-ifdown` detaches only from a bridge the ACL allows;
//! - the bridge: the first `tap` rule whose glob matches the tap's name, else the `bridge` line,
//!   else the first device of the default routes (IPv4, then IPv6; every next hop of a multipath
//!   route) that is a bridge.

use std::fmt;

use ifup_netlink::{Link, Route, VlanEntry};
use ifup_policy::{
    tap_is_callers, Acl, AclVerdict, BridgeDef, Caller, Choice, Config, IfName, NotCallers,
    PortOptions, Prefix, TapOwner,
};

use crate::error::{Error, Subject};
use crate::ACL_PATH;

/// Who runs us, decided once at start.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Root, or a user without privilege gained on exec: no ACL, and the kernel refuses what the
    /// caller may not do.
    Trusted,
    /// Privileged mode (setuid root or file capabilities, run by a user other than root): the
    /// rules for `caller` apply. An ACL that could not be read or parsed is kept as the reason
    /// every bridge is denied.
    Privileged {
        caller: Caller,
        acl: Result<Acl, String>,
        /// Whether the caller may read the config file (errors from files they cannot read are
        /// not quoted, and neither are the globs of its rules).
        reads_config: bool,
    },
}

/// Why privileged mode refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The tap is not the caller's.
    NotCallers { uid: u32, why: NotCallers },
    /// A `deny` line of the ACL names the bridge (or `all`).
    AclDeny {
        bridge: String,
        uid: u32,
        at: String,
    },
    /// No line of the ACL allows the bridge to this caller.
    AclNoMatch { bridge: String, uid: u32 },
    /// The ACL could not be used: everything is denied.
    AclUnusable { reason: String },
    /// The tap is already a port of another device.
    AttachedElsewhere { other: String },
    /// The tap's master cannot be looked up (fail closed: it is not one the ACL allows).
    MasterUnknown { index: u32 },
    /// The tap's master is not a bridge.
    MasterNotBridge { what: String },
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::NotCallers { uid, why } => {
                write!(f, "the tap is not the caller's (uid {uid}): {why}")
            }
            Denial::AclDeny { bridge, uid, at } => {
                write!(f, "bridge {bridge} is denied to uid {uid} by {at}")
            }
            Denial::AclNoMatch { bridge, uid } => write!(
                f,
                "{ACL_PATH} does not allow bridge {bridge} to uid {uid} (the admin can add `allow {bridge}`)"
            ),
            Denial::AclUnusable { reason } => {
                write!(f, "the ACL cannot be used, so everything is denied: {reason}")
            }
            Denial::AttachedElsewhere { other } => write!(
                f,
                "the tap is already attached to {other}; moving taps between bridges is not allowed"
            ),
            Denial::MasterUnknown { index } => {
                write!(f, "the tap's master (ifindex {index}) cannot be looked up")
            }
            Denial::MasterNotBridge { what } => {
                write!(f, "the tap's master is {what}, not a bridge")
            }
        }
    }
}

/// The tap QEMU named, as the kernel knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tap {
    pub link: Link,
    /// The kernel's name of the tap (a lookup by an alternative name returns it).
    pub name: IfName,
}

/// The tap found by the name QEMU passed (`argv`): it must be a tap, and from now on it goes by
/// the kernel's name. `Ok(None)`: there is no such link.
pub fn the_tap(argv: &IfName, found: Option<Link>) -> Result<Option<Tap>, Error> {
    let Some(link) = found else {
        return Ok(None);
    };
    // The kernel's names obey the same rules as ours, but a name from the kernel is still
    // checked rather than trusted.
    let name = IfName::parse(&link.name).map_err(|e| Error::Invalid {
        at: Subject::new(argv, None),
        reason: format!("the kernel's name of the link is unusable: {e}"),
    })?;
    if !link.is_tap() {
        return Err(Error::NotATap {
            tap: name.to_string(),
            what: link.describe(),
        });
    }
    Ok(Some(Tap { link, name }))
}

/// A name the kernel reported, checked as ours are rather than trusted; `at` says what it was
/// about, should it fail.
pub fn kernel_name(name: &str, at: impl FnOnce() -> Subject) -> Result<IfName, Error> {
    IfName::parse(name).map_err(|e| Error::Invalid {
        at: at(),
        reason: e.to_string(),
    })
}

/// `bridge` (for the tap `tap`, if there is one yet) must be a bridge; returns its kernel name.
/// `origin` says where it was named.
fn a_bridge(bridge: &Link, tap: Option<&IfName>, origin: &str) -> Result<IfName, Error> {
    let at = || Subject {
        tap: tap.map(ToString::to_string),
        bridge: Some(bridge.name.clone()),
    };
    if !bridge.is_bridge() {
        return Err(Error::NotABridge {
            at: at(),
            what: bridge.describe(),
            origin: origin.to_owned(),
        });
    }
    kernel_name(&bridge.name, at)
}

/// Privileged mode: the tap must be the caller's.
pub fn callers_tap(mode: &Mode, tap: &Tap, bridge: Option<&str>) -> Result<(), Error> {
    let Mode::Privileged { caller, .. } = mode else {
        return Ok(());
    };
    let tun = tap.link.tun.unwrap_or(ifup_netlink::TunInfo {
        tap: true,
        owner: None,
        group: None,
        persist: false,
    });
    let owner = TapOwner {
        owner: tun.owner,
        group: tun.group,
    };
    tap_is_callers(owner, caller).map_err(|why| {
        denied(
            tap,
            bridge,
            Denial::NotCallers {
                uid: caller.uid,
                why,
            },
        )
    })
}

/// Privileged mode: the ACL must allow `bridge` to the caller.
pub fn acl_allows(mode: &Mode, tap: &Tap, bridge: &IfName) -> Result<(), Error> {
    match acl_denial(mode, bridge) {
        Some(reason) => Err(denied(tap, Some(bridge.as_str()), reason)),
        None => Ok(()),
    }
}

/// Privileged mode: why the ACL does not allow `bridge` to the caller (`None`: it does, or this
/// is not privileged mode).
fn acl_denial(mode: &Mode, bridge: &IfName) -> Option<Denial> {
    let Mode::Privileged { caller, acl, .. } = mode else {
        return None;
    };
    match acl {
        Ok(acl) => match acl.verdict(bridge) {
            AclVerdict::Allowed { .. } => None,
            AclVerdict::Denied { at } => Some(Denial::AclDeny {
                bridge: bridge.to_string(),
                uid: caller.uid,
                at: at.to_string(),
            }),
            AclVerdict::NoMatch => Some(Denial::AclNoMatch {
                bridge: bridge.to_string(),
                uid: caller.uid,
            }),
        },
        Err(reason) => Some(Denial::AclUnusable {
            reason: reason.clone(),
        }),
    }
}

fn denied(tap: &Tap, bridge: Option<&str>, reason: Denial) -> Error {
    Error::Denied {
        at: Subject::new(&tap.name, bridge),
        reason,
    }
}

/// Where the bridge came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A config line (its description: `tap rule "vm-*" at FILE:LINE`, `bridge line at ...`).
    Config(String),
    /// The default route.
    DefaultRoute,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Config(s) => f.write_str(s),
            Origin::DefaultRoute => f.write_str("the bridge of the default route"),
        }
    }
}

/// The config's choice for a tap named `name`, with its origin as the caller may see it.
pub fn rule_for(config: Option<&Config>, name: &IfName, mode: &Mode) -> Option<(Choice, Origin)> {
    let choice = config?.choose(name)?;
    let origin = config_origin(mode, &choice.origin);
    Some((choice, origin))
}

/// Where a config line is, as the caller may see it: in privileged mode a caller who cannot read
/// the config sees where a rule is, not its glob.
pub fn config_origin(mode: &Mode, origin: &ifup_policy::Origin) -> Origin {
    Origin::Config(match (mode, origin) {
        (
            Mode::Privileged {
                reads_config: false,
                ..
            },
            ifup_policy::Origin::TapRule { at, .. },
        ) => format!("tap rule at {at}"),
        (_, o) => o.to_string(),
    })
}

/// The first device of the default routes that is a bridge (as Debian's `/etc/qemu-ifup` picks
/// it, and also through the next hops of multipath routes, which its `awk` does not see).
/// `candidates` holds every route's devices as looked up, in route order (`None`: the device
/// vanished). The error says why there is none.
pub fn default_route_bridge(routes: &[Route], candidates: &[Option<Link>]) -> Result<Link, String> {
    if let Some(bridge) = candidates.iter().flatten().find(|l| l.is_bridge()) {
        return Ok(bridge.clone());
    }
    let why = if routes.is_empty() {
        "no config rule matches and there is no default route".to_owned()
    } else {
        let names: Vec<String> = candidates
            .iter()
            .flatten()
            .map(|l| l.name.clone())
            .collect();
        let devices = if names.is_empty() {
            "devices that no longer exist".to_owned()
        } else {
            names.join(", ")
        };
        format!(
            "no config rule matches and no default route goes via a bridge (they go via {devices})"
        )
    };
    Err(why)
}

/// What the lookups for qemu-ifup found (see `flow.rs`).
#[derive(Debug, Clone)]
pub struct UpFacts {
    /// The name QEMU passed.
    pub argv: IfName,
    /// The link by that name.
    pub tap: Option<Link>,
    /// Where the bridge (or the routes) come from, and what was found; `None` when there is no
    /// tap to attach.
    pub bridge: Option<BridgeFacts>,
    /// The tap's master, when it has one other than the bridge.
    pub current_master: Option<Link>,
    /// The tap's VLANs on the bridge, when it is already a port of it and the bridge filters
    /// VLANs.
    pub vlans: Option<Vec<VlanEntry>>,
}

/// The bridge of a config rule, or the candidates of the default routes. (One per run: the
/// size difference of the variants costs nothing worth a box.)
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum BridgeFacts {
    Rule {
        bridge: IfName,
        options: PortOptions,
        origin: Origin,
        /// The link of that name.
        link: Option<Link>,
        /// The config's `create-bridge` line for it, if any.
        create: Option<BridgeDef>,
    },
    /// A routed rule: its destinations, and the routes of the main table to each.
    Route {
        prefixes: Vec<Prefix>,
        options: PortOptions,
        origin: Origin,
        existing: Vec<(Prefix, Vec<ExistingRoute>)>,
    },
    DefaultRoute {
        /// The unicast default routes looked at, IPv4 then IPv6, each in the kernel's order.
        routes: Vec<Route>,
        /// Every route's devices as looked up, in route order (`None`: vanished).
        candidates: Vec<Option<Link>>,
    },
}

/// A route already in the main table, with the names of its devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRoute {
    pub route: Route,
    pub via: Vec<String>,
}

/// qemu-ifup's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Up {
    /// Attach the tap to a bridge.
    Attach(Attach),
    /// The bridge does not exist and the config declares it: create it, then decide again.
    CreateBridge(BridgeDef),
    /// Route the rule's destinations to the tap.
    Route(Routed),
}

/// A routed tap, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub tap: Tap,
    /// The rule's destinations, in its order.
    pub prefixes: Vec<Prefix>,
    /// Those already routed to this tap (nothing to do for them).
    pub present: Vec<Prefix>,
    pub options: PortOptions,
    pub origin: Origin,
}

/// What qemu-ifup will do with a bridge, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attach {
    pub tap: Tap,
    pub bridge: Link,
    pub options: PortOptions,
    pub origin: Origin,
    /// The tap's VLANs on `bridge`, when it is already a port of it and the bridge filters VLANs.
    pub vlans: Option<Vec<VlanEntry>>,
}

/// qemu-ifup's decision, in this order: the tap exists and is a tap; (privileged mode) it is the
/// caller's; the bridge exists and is a bridge (or the config declares it, and it is to be
/// created); (privileged mode) the ACL allows it and the tap is not on another master. For a
/// routed rule: (privileged mode) the tap is the caller's and on no bridge, and no destination is
/// routed elsewhere already. `config_desc` names the config for the "no bridge" message.
pub fn up(mode: &Mode, config_desc: &str, facts: UpFacts) -> Result<Up, Error> {
    let tap = the_tap(&facts.argv, facts.tap)?.ok_or_else(|| Error::TapMissing {
        tap: facts.argv.to_string(),
    })?;
    let (bridge, label, origin, options, create) = match facts.bridge {
        Some(BridgeFacts::Rule {
            bridge: name,
            options,
            origin,
            link,
            create,
        }) => (link, name.to_string(), origin, options, create),
        Some(BridgeFacts::DefaultRoute { routes, candidates }) => {
            match default_route_bridge(&routes, &candidates) {
                Ok(link) => {
                    let label = link.name.clone();
                    let options = PortOptions::default();
                    (Some(link), label, Origin::DefaultRoute, options, None)
                }
                Err(why) => {
                    callers_tap(mode, &tap, None)?;
                    return Err(Error::NoBridge {
                        tap: tap.name.to_string(),
                        why,
                        config: config_desc.to_owned(),
                    });
                }
            }
        }
        Some(BridgeFacts::Route {
            prefixes,
            options,
            origin,
            existing,
        }) => return routed(mode, tap, prefixes, options, origin, &existing).map(Up::Route),
        None => {
            return Err(Error::Invalid {
                at: Subject::new(&tap.name, None),
                reason: "no bridge was looked up".to_owned(),
            })
        }
    };
    callers_tap(mode, &tap, Some(&label))?;
    let Some(bridge) = bridge else {
        if let Some(def) = create {
            // Declared by root: it may be created, if the caller may use it.
            acl_allows(mode, &tap, &def.name)?;
            return Ok(Up::CreateBridge(def));
        }
        return Err(Error::BridgeMissing {
            at: Subject::new(&tap.name, Some(&label)),
            origin: origin.to_string(),
        });
    };
    let kernel_name = a_bridge(&bridge, Some(&tap.name), &origin.to_string())?;
    acl_allows(mode, &tap, &kernel_name)?;
    if let (Mode::Privileged { .. }, Some(m)) = (mode, tap.link.master) {
        if m != bridge.index {
            let other = facts
                .current_master
                .as_ref()
                .map_or_else(|| format!("ifindex {m}"), |l| l.name.clone());
            return Err(denied(
                &tap,
                Some(&bridge.name),
                Denial::AttachedElsewhere { other },
            ));
        }
    }
    Ok(Up::Attach(Attach {
        tap,
        bridge,
        options,
        origin,
        vlans: facts.vlans,
    }))
}

/// A routed rule: (privileged mode) the tap must be the caller's and on no bridge. A destination
/// already routed through another device (another VM's tap), or through none (a blackhole), or
/// through several (a multipath route) is someone else's: refused, nothing changed. One already
/// routed to this tap is in place.
fn routed(
    mode: &Mode,
    tap: Tap,
    prefixes: Vec<Prefix>,
    options: PortOptions,
    origin: Origin,
    existing: &[(Prefix, Vec<ExistingRoute>)],
) -> Result<Routed, Error> {
    callers_tap(mode, &tap, None)?;
    if let (Mode::Privileged { .. }, Some(m)) = (mode, tap.link.master) {
        return Err(denied(
            &tap,
            None,
            Denial::AttachedElsewhere {
                other: format!("ifindex {m} (a routed tap is on no bridge)"),
            },
        ));
    }
    let mut present = Vec::new();
    for (prefix, routes) in existing {
        for e in routes {
            if e.route.is_unicast() && e.route.devices == [tap.link.index] {
                present.push(*prefix);
                continue;
            }
            let via = if e.via.is_empty() {
                "no device (a blackhole or unreachable route)".to_owned()
            } else {
                e.via.join(", ")
            };
            return Err(Error::Invalid {
                at: Subject::new(&tap.name, None),
                reason: format!(
                    "{prefix} is already routed via {via} ({origin}): refusing to take it; \
                     remove that route first, or give this tap another address"
                ),
            });
        }
    }
    Ok(Routed {
        tap,
        prefixes,
        present,
        options,
        origin,
    })
}

/// What the lookups for qemu-ifdown found.
#[derive(Debug, Clone)]
pub struct DownFacts {
    pub argv: IfName,
    pub tap: Option<Link>,
    /// The lookup of the tap's master, when it has one.
    pub master: Option<Link>,
}

/// What qemu-ifdown will do, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detach {
    pub tap: Tap,
    /// The bridge (or other master) the tap is on.
    pub master: Option<Link>,
}

/// qemu-ifdown's decision: no tap is nothing to do (`Ok(None)`); it must be a tap; (privileged
/// mode) it must be the caller's, and its master, if any, a bridge the ACL allows.
pub fn down(mode: &Mode, facts: DownFacts) -> Result<Option<Detach>, Error> {
    let Some(tap) = the_tap(&facts.argv, facts.tap)? else {
        return Ok(None);
    };
    let master = facts.master;
    callers_tap(mode, &tap, master.as_ref().map(|m| m.name.as_str()))?;
    if let Mode::Privileged { .. } = mode {
        match (tap.link.master, &master) {
            (Some(index), None) => {
                return Err(denied(&tap, None, Denial::MasterUnknown { index }));
            }
            (_, Some(m)) => {
                if !m.is_bridge() {
                    return Err(denied(
                        &tap,
                        Some(&m.name),
                        Denial::MasterNotBridge { what: m.describe() },
                    ));
                }
                let bridge = kernel_name(&m.name, || Subject::new(&tap.name, Some(&m.name)))?;
                acl_allows(mode, &tap, &bridge)?;
            }
            (None, None) => {}
        }
    }
    Ok(Some(Detach { tap, master }))
}

/// Bridge-helper mode (qemu-ifup as QEMU's `qemu-bridge-helper`): `bridge` must exist and be a
/// bridge, and (privileged mode) the ACL must allow it, before any tap is made. No tap is the
/// caller's to check: the helper makes it, and the caller never names it.
pub fn helper(mode: &Mode, bridge_name: &IfName, bridge: Option<Link>) -> Result<Link, Error> {
    let origin = "given with --br".to_owned();
    let Some(bridge) = bridge else {
        return Err(Error::BridgeMissing {
            at: Subject::bridge(bridge_name),
            origin,
        });
    };
    let kernel_name = a_bridge(&bridge, None, &origin)?;
    if let Some(reason) = acl_denial(mode, &kernel_name) {
        return Err(Error::Denied {
            at: Subject::bridge(&kernel_name),
            reason,
        });
    }
    Ok(bridge)
}
