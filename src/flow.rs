//! What both programs do once started: look up what the decisions need, decide, plan, and apply
//! the plan in one loop (with its undo on failure) or, for `--dry-run`, describe it. Everything
//! goes through [`Net`], so the whole flow runs against the recording fake in the tests below.

use ifup_netlink::{Errno, Link, LinkChange, NetlinkError, Route};
use ifup_policy::{BridgeDef, Config, IfName, Prefix, Way};

use crate::decide::{self, BridgeFacts, DownFacts, ExistingRoute, Mode, Routed, Tap, Up, UpFacts};
use crate::error::{Error, Hint, Subject, Undo};
use crate::net::Net;
use crate::plan::{self, Plan, Step};

/// What a run did or would do, for `main` to report once privilege is gone.
#[derive(Debug, Default)]
pub struct Outcome {
    /// For stdout (`--dry-run`).
    pub stdout: String,
    /// One line per change made, for syslog.
    pub changes: Vec<String>,
    /// The bridge the tap is (or would be) on, when the run changed or would change something:
    /// `main` checks it for settings worth a warning.
    pub bridge: Option<Link>,
    /// For a routed tap that changed (or would): the address families it routes, for which
    /// `main` checks that the host forwards.
    pub routed: Option<Families>,
}

/// Which address families some destinations are in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Families {
    pub ipv4: bool,
    pub ipv6: bool,
}

impl Families {
    fn of(prefixes: &[Prefix]) -> Families {
        Families {
            ipv4: prefixes.iter().any(|p| !p.is_ipv6()),
            ipv6: prefixes.iter().any(Prefix::is_ipv6),
        }
    }
}

fn lookup(argv: &IfName) -> impl Fn(NetlinkError) -> Error + '_ {
    move |source| Error::Netlink {
        tap: argv.to_string(),
        source,
        hint: Hint::default(),
    }
}

/// The lookups for qemu-ifup's decision: the tap by the name QEMU passed; the config's choice by
/// the kernel's name of it (or the default routes' devices, up to the first bridge); the tap's
/// master when it is another device; the tap's VLANs when it is already on a VLAN-filtering
/// bridge. For a routed rule: the routes of the main table to each destination.
fn gather_up(
    net: &mut dyn Net,
    argv: &IfName,
    config: Option<&Config>,
    mode: &Mode,
) -> Result<UpFacts, Error> {
    let err = lookup(argv);
    let tap = net.link_by_name(argv.as_str()).map_err(&err)?;
    let mut facts = UpFacts {
        argv: argv.clone(),
        tap: tap.clone(),
        bridge: None,
        current_master: None,
        vlans: None,
    };
    let Some(tap) = tap.filter(Link::is_tap) else {
        return Ok(facts);
    };
    let Ok(name) = IfName::parse(&tap.name) else {
        return Ok(facts);
    };
    let (bridge_facts, bridge) = match decide::rule_for(config, &name, mode) {
        Some((choice, origin)) => match choice.way {
            Way::Bridge(bridge) => {
                let link = net.link_by_name(bridge.as_str()).map_err(&err)?;
                let found = link.clone();
                let create = config.and_then(|c| c.bridge_def(&bridge)).cloned();
                let facts = BridgeFacts::Rule {
                    bridge,
                    options: choice.options,
                    origin,
                    link,
                    create,
                };
                (facts, found)
            }
            Way::Route(prefixes) => {
                // The main table, once for each family the rule routes.
                let mut table = Vec::new();
                for ipv6 in [false, true] {
                    if prefixes.iter().any(|p| p.is_ipv6() == ipv6) {
                        table.extend(net.main_routes(ipv6).map_err(&err)?);
                    }
                }
                let mut existing = Vec::new();
                for p in &prefixes {
                    let mut routes = Vec::new();
                    let to_p = table
                        .iter()
                        .filter(|r| r.dst == p.addr && r.dst_len == p.len);
                    for route in to_p.cloned() {
                        let mut via = Vec::new();
                        for &dev in &route.devices {
                            via.push(match net.link_by_index(dev).map_err(&err)? {
                                Some(l) => l.name,
                                None => format!("ifindex {dev}"),
                            });
                        }
                        routes.push(ExistingRoute { route, via });
                    }
                    existing.push((*p, routes));
                }
                let facts = BridgeFacts::Route {
                    prefixes,
                    options: choice.options,
                    origin,
                    existing,
                };
                (facts, None)
            }
        },
        None => {
            // IPv4 first; the IPv6 routes are looked up only when no IPv4 one goes via a bridge.
            let mut routes = Vec::new();
            let mut candidates = Vec::new();
            'families: for ipv6 in [false, true] {
                let defaults: Vec<Route> = net
                    .main_routes(ipv6)
                    .map_err(&err)?
                    .into_iter()
                    .filter(Route::is_default)
                    .collect();
                routes.extend(defaults.iter().cloned());
                for &dev in defaults.iter().flat_map(|r| &r.devices) {
                    let link = net.link_by_index(dev).map_err(&err)?;
                    let is_bridge = link.as_ref().is_some_and(Link::is_bridge);
                    candidates.push(link);
                    if is_bridge {
                        break 'families;
                    }
                }
            }
            let found = candidates.iter().flatten().find(|l| l.is_bridge()).cloned();
            (BridgeFacts::DefaultRoute { routes, candidates }, found)
        }
    };
    facts.bridge = Some(bridge_facts);
    if let Some(master) = tap.master {
        match bridge {
            Some(b) if b.index == master => {
                if b.bridge.is_some_and(|i| i.vlan_filtering) {
                    facts.vlans = match net.port_vlans(tap.index) {
                        Ok(v) => Some(v),
                        // Before Linux 5.8 there is no per-port VLAN dump: plan as for a new port.
                        Err(e) if matches!(e.errno(), Some(Errno::EOPNOTSUPP | Errno::EINVAL)) => {
                            None
                        }
                        Err(e) => return Err(err(e)),
                    };
                }
            }
            _ => facts.current_master = net.link_by_index(master).map_err(&err)?,
        }
    }
    Ok(facts)
}

/// qemu-ifup TAP. `config_desc` names the config for messages; `note` is printed under the
/// dry-run header (the privileges the helper runs with).
pub fn up(
    net: &mut dyn Net,
    mode: &Mode,
    config: Option<&Config>,
    config_desc: &str,
    argv: &IfName,
    dry_run: bool,
    note: Option<&str>,
) -> Result<Outcome, Error> {
    let facts = gather_up(net, argv, config, mode)?;
    let (a, created) = match decide::up(mode, config_desc, facts)? {
        Up::Attach(a) => (a, None),
        Up::Route(r) => return routed(net, r, dry_run, note),
        Up::CreateBridge(def) if dry_run => return create_bridge_dry_run(&def, argv, note),
        Up::CreateBridge(def) => {
            let created = create_bridge(net, &def, argv)?;
            // Decide again, now that it exists (a bridge someone else just created too).
            match decide::up(mode, config_desc, gather_up(net, argv, config, mode)?)? {
                Up::Attach(a) => (a, created),
                _ => {
                    return Err(Error::Invalid {
                        at: Subject::new(argv, Some(def.name.as_str())),
                        reason: "the bridge just created cannot be found".to_owned(),
                    })
                }
            }
        }
    };
    let origin = a.origin.to_string();
    let plan = plan_attach(&a)?;
    let (tap, bridge) = (&a.tap, &a.bridge);
    if dry_run {
        let header = format!(
            "tap {} (ifindex {}), bridge {} (ifindex {}, {origin})",
            tap.name, tap.link.index, bridge.name, bridge.index
        );
        return Ok(Outcome {
            stdout: dry_run_text(
                header,
                note,
                plan.describe(&bridge.name),
                "already attached and up",
            ),
            bridge: Some(a.bridge),
            ..Outcome::default()
        });
    }
    let mut changes: Vec<String> = created.into_iter().collect();
    if !plan.is_empty() {
        apply(net, tap, Some(&bridge.name), &plan)?;
        changes.push(format!(
            "tap {} -> bridge {}: {} ({origin})",
            tap.name,
            bridge.name,
            plan.describe(&bridge.name).join(", ")
        ));
    } else if changes.is_empty() {
        return Ok(Outcome::default());
    }
    Ok(Outcome {
        changes,
        bridge: Some(a.bridge),
        ..Outcome::default()
    })
}

/// What creating the bridge `def` does, in order (for --dry-run and syslog).
fn bridge_creation(def: &BridgeDef) -> Vec<String> {
    let mut out = vec![format!(
        "create bridge {} (stp off, forward delay 0, address {})",
        def.name,
        plan::fmt_mac(&def.mac())
    )];
    out.extend(def.addresses.iter().map(|a| format!("add address {a}")));
    out.push("set the bridge up".to_owned());
    out
}

fn create_bridge_dry_run(
    def: &BridgeDef,
    argv: &IfName,
    note: Option<&str>,
) -> Result<Outcome, Error> {
    let header = format!(
        "tap {argv}, bridge {} (to be created: create-bridge line at {})",
        def.name, def.at
    );
    let mut lines = bridge_creation(def);
    lines.push(format!(
        "then attach the tap to {} as its rule says",
        def.name
    ));
    Ok(Outcome {
        stdout: dry_run_text(header, note, lines, ""),
        ..Outcome::default()
    })
}

/// Create the bridge `def` declares: STP off, forward delay 0, its MAC, its addresses, up.
/// Another qemu-ifup creating it at the same time is no error (`EEXIST`: look it up and go on);
/// a device of that name that is not a bridge is found by the decision that follows. The bridge
/// stays, whatever happens to the tap next: another VM may be on it already. Returns the syslog
/// line when this run created it.
fn create_bridge(
    net: &mut dyn Net,
    def: &BridgeDef,
    argv: &IfName,
) -> Result<Option<String>, Error> {
    let at = || Subject::new(argv, Some(def.name.as_str()));
    let failed = |action: &'static str| {
        move |source| Error::Failed {
            at: at(),
            action,
            source,
            undo: Undo::None,
            hint: Hint::default(),
        }
    };
    let created = match net.new_bridge(def.name.as_str(), def.mac()) {
        Ok(()) => true,
        Err(e) if e.errno() == Some(Errno::EEXIST) => false,
        Err(e) => return Err(failed("creating the bridge")(e)),
    };
    let Some(bridge) = net.link_by_name(def.name.as_str()).map_err(lookup(argv))? else {
        return Err(Error::Invalid {
            at: at(),
            reason: "the bridge vanished right after it was created".to_owned(),
        });
    };
    if !bridge.is_bridge() {
        // The decision that follows says so.
        return Ok(None);
    }
    for a in &def.addresses {
        match net.add_address(bridge.index, a.addr, a.len) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(Errno::EEXIST) => {}
            Err(e) => return Err(failed("adding the bridge's address")(e)),
        }
    }
    if !bridge.up {
        let up = LinkChange {
            up: Some(true),
            ..LinkChange::default()
        };
        net.set_link(bridge.index, &up)
            .map_err(failed("bringing the bridge up"))?;
    }
    Ok(created.then(|| {
        format!(
            "bridge {}: {} (create-bridge line at {})",
            def.name,
            bridge_creation(def).join(", "),
            def.at
        )
    }))
}

/// qemu-ifup for a routed tap: plan, then apply (or describe).
fn routed(
    net: &mut dyn Net,
    r: Routed,
    dry_run: bool,
    note: Option<&str>,
) -> Result<Outcome, Error> {
    let plan = plan::routed(&r).map_err(|e| Error::Invalid {
        at: Subject::new(&r.tap.name, None),
        reason: e.reason(&r.tap.link, &r.origin.to_string()),
    })?;
    let families = Families::of(&r.prefixes);
    if dry_run {
        let header = format!(
            "tap {} (ifindex {}), routed: {} ({})",
            r.tap.name,
            r.tap.link.index,
            r.prefixes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            r.origin
        );
        return Ok(Outcome {
            stdout: dry_run_text(
                header,
                note,
                plan.describe(""),
                "its routes are in place and it is up",
            ),
            routed: Some(families),
            ..Outcome::default()
        });
    }
    if plan.is_empty() {
        return Ok(Outcome::default());
    }
    apply(net, &r.tap, None, &plan)?;
    Ok(Outcome {
        changes: vec![format!(
            "tap {} routed: {} ({})",
            r.tap.name,
            plan.describe("").join(", "),
            r.origin
        )],
        routed: Some(families),
        ..Outcome::default()
    })
}

/// qemu-ifdown TAP.
pub fn down(
    net: &mut dyn Net,
    mode: &Mode,
    argv: &IfName,
    dry_run: bool,
    note: Option<&str>,
) -> Result<Outcome, Error> {
    let err = lookup(argv);
    let tap = net.link_by_name(argv.as_str()).map_err(&err)?;
    let master = match tap.as_ref().filter(|l| l.is_tap()).and_then(|l| l.master) {
        Some(m) => net.link_by_index(m).map_err(&err)?,
        None => None,
    };
    let Some(d) = decide::down(
        mode,
        DownFacts {
            argv: argv.clone(),
            tap,
            master,
        },
    )?
    else {
        let stdout = if dry_run {
            format!("tap {argv}: does not exist, nothing to do\n")
        } else {
            String::new()
        };
        return Ok(Outcome {
            stdout,
            ..Outcome::default()
        });
    };
    // The routes the helper added to it (none for a bridged tap).
    let routes = net
        .routes_by(d.tap.link.index, plan::ROUTE_PROTOCOL)
        .map_err(&err)?;
    let plan = plan::down(&d, &routes);
    let bridge = d.master.as_ref().map_or("", |m| m.name.as_str());
    if dry_run {
        let on = match &d.master {
            Some(m) => format!("bridge {}", m.name),
            None => "on no bridge".to_owned(),
        };
        let header = format!("tap {} (ifindex {}), {on}", d.tap.name, d.tap.link.index);
        return Ok(Outcome {
            stdout: dry_run_text(
                header,
                note,
                plan.describe(bridge),
                "not attached, no route of ours, down",
            ),
            ..Outcome::default()
        });
    }
    match apply(
        net,
        &d.tap,
        d.master.as_ref().map(|m| m.name.as_str()),
        &plan,
    ) {
        Ok(()) if plan.is_empty() => Ok(Outcome::default()),
        Ok(()) => Ok(Outcome {
            changes: vec![format!(
                "tap {}: {}",
                d.tap.name,
                plan.describe(bridge).join(", ")
            )],
            ..Outcome::default()
        }),
        // The tap vanished under us (QEMU closed it): nothing left to do.
        Err(Error::Failed { source, .. }) if source.errno() == Some(Errno::ENODEV) => {
            Ok(Outcome::default())
        }
        Err(e) => Err(e),
    }
}

/// Bridge-helper mode: check `bridge` (and, privileged, the ACL), then create a tap, give it the
/// options of the config's rule for (this bridge, the tap's name), attach it and bring it up.
/// Returns the tap, to be passed to QEMU; dropping it deletes the tap (it is not persistent),
/// so on any error here nothing is left behind.
pub fn helper(
    net: &mut dyn Net,
    mode: &Mode,
    config: Option<&Config>,
    bridge_name: &IfName,
    vnet_hdr: bool,
) -> Result<(Outcome, ifup_tun::NewTap), Error> {
    let at = || Subject::bridge(bridge_name);
    let err = |source| Error::Netlink {
        tap: format!("(new) for bridge {bridge_name}"),
        source,
        hint: Hint::default(),
    };
    let bridge = net.link_by_name(bridge_name.as_str()).map_err(err)?;
    let bridge = decide::helper(mode, bridge_name, bridge)?;
    let new = net.create_tap(vnet_hdr).map_err(|source| Error::Tun {
        at: at(),
        source,
        hint: Hint::default(),
    })?;
    let link = net
        .link_by_name(&new.name)
        .map_err(err)?
        .ok_or_else(|| Error::Invalid {
            at: Subject::new(&new.name, Some(&bridge.name)),
            reason: "the new tap cannot be found".to_owned(),
        })?;
    let name = decide::kernel_name(&link.name, || Subject::new(&new.name, Some(&bridge.name)))?;
    let (options, origin) = match config.and_then(|c| c.choose_for_bridge(&name, bridge_name)) {
        Some(choice) => (choice.options, decide::config_origin(mode, &choice.origin)),
        None => (
            ifup_policy::PortOptions::default(),
            decide::Origin::Config("defaults".to_owned()),
        ),
    };
    let a = decide::Attach {
        tap: Tap { link, name },
        bridge,
        options,
        origin,
        vlans: None,
    };
    let plan = plan_attach(&a)?;
    apply(net, &a.tap, Some(&a.bridge.name), &plan)?;
    let outcome = Outcome {
        routed: None,
        stdout: String::new(),
        changes: vec![format!(
            "tap {} (new{}) -> bridge {}: {} ({})",
            a.tap.name,
            if new.vnet_hdr { ", vnet_hdr" } else { "" },
            a.bridge.name,
            plan.describe(&a.bridge.name).join(", "),
            a.origin
        )],
        bridge: Some(a.bridge),
    };
    Ok((outcome, new))
}

/// The plan for attaching, or why there is none (nothing changed).
fn plan_attach(a: &decide::Attach) -> Result<Plan, Error> {
    plan::up(a).map_err(|e| Error::Invalid {
        at: Subject::new(&a.tap.name, Some(&a.bridge.name)),
        reason: e.reason(&a.bridge, &a.origin.to_string()),
    })
}

/// A dry run's text: `header`, the `note` (the privileges line), then one indented line per
/// change, or `nothing to do: {nothing}`.
fn dry_run_text(header: String, note: Option<&str>, lines: Vec<String>, nothing: &str) -> String {
    let mut out = header + "\n";
    if let Some(note) = note {
        out.push_str(&format!("  {note}\n"));
    }
    if lines.is_empty() {
        out.push_str(&format!("  nothing to do: {nothing}\n"));
    }
    for l in lines {
        out.push_str(&format!("  {l}\n"));
    }
    out
}

fn run_step(net: &mut dyn Net, index: u32, step: &Step) -> Result<(), NetlinkError> {
    match step {
        Step::Link(c) => net.set_link(index, c),
        Step::Port(p) => net.set_bridge_port(index, p),
        Step::AddRoute(r) => net.add_route(r),
        // Gone already (an IPv4 route goes with its device's address or carrier): done.
        Step::DelRoute(r) => match net.del_route(r) {
            Err(e) if matches!(e.errno(), Some(Errno::ESRCH | Errno::ENOENT)) => Ok(()),
            other => other,
        },
    }
}

/// Apply the steps in order; on the first failure, apply the undo (which restores the state
/// before the run) and report both. A "not permitted" on the first step changed nothing (the
/// kernel checks the capability before touching the link), so there is nothing to undo then.
pub fn apply(net: &mut dyn Net, tap: &Tap, bridge: Option<&str>, plan: &Plan) -> Result<(), Error> {
    for (i, step) in plan.steps.iter().enumerate() {
        if let Err(source) = run_step(net, tap.link.index, step) {
            let undo = if plan.undo.is_empty() || (i == 0 && source.is_permission()) {
                Undo::None
            } else if plan
                .undo
                .iter()
                .all(|u| run_step(net, tap.link.index, u).is_ok())
            {
                Undo::Restored
            } else {
                Undo::Failed
            };
            return Err(Error::Failed {
                at: Subject::new(&tap.name, bridge),
                action: step.action(),
                source,
                undo,
                hint: Hint::default(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Every refusal of both programs, and the flow's decisions, against the recording fake:
    //! each refusal changes nothing; each message names the tap, the bridge and the reason.
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::decide::Denial;
    use crate::net::fake::FakeNet;
    use ifup_netlink::{BridgeInfo, PortFlags, TunInfo};
    use ifup_policy::{parse_acl, parse_config, Acl, Caller, MemSource, NotCallers, Trust};
    use std::path::Path;

    const ALICE: u32 = 1000;
    const BOB: u32 = 1001;
    const KVM: u32 = 27;

    fn alice() -> Caller {
        Caller {
            uid: ALICE,
            gid: ALICE,
            groups: vec![KVM],
        }
    }

    fn base(index: u32, name: &str, kind: Option<&str>) -> Link {
        Link {
            index,
            name: name.into(),
            kind: kind.map(Into::into),
            mtu: 1500,
            max_mtu: Some(65535),
            master: None,
            up: false,
            loopback: false,
            address: Some(vec![0x52, 0x54, 0, 0, 0, index as u8]),
            tun: None,
            bridge: None,
            port: None,
            proxy_arp: Some(false),
        }
    }

    fn tap(index: u32, name: &str, owner: Option<u32>, group: Option<u32>) -> Link {
        Link {
            max_mtu: Some(65521),
            tun: Some(TunInfo {
                tap: true,
                owner,
                group,
                persist: true,
            }),
            ..base(index, name, Some("tun"))
        }
    }

    fn bridge(index: u32, name: &str, mtu: u32) -> Link {
        Link {
            mtu,
            up: true,
            bridge: Some(BridgeInfo {
                default_pvid: Some(1),
                ..BridgeInfo::default()
            }),
            ..base(index, name, Some("bridge"))
        }
    }

    /// lo, br0 (2, MTU 1400), br1 (3), veth0 (4), alice's tap vmtap0 (10).
    fn world() -> FakeNet {
        let mut lo = base(1, "lo", None);
        lo.loopback = true;
        FakeNet::new(vec![
            lo,
            bridge(2, "br0", 1400),
            bridge(3, "br1", 1500),
            base(4, "veth0", Some("veth")),
            tap(10, "vmtap0", Some(ALICE), None),
        ])
    }

    fn config(text: &str) -> Config {
        let mut src = MemSource::new();
        src.insert_text("/etc/qemu-ifup-rs.conf", text);
        parse_config(Path::new("/etc/qemu-ifup-rs.conf"), &src, Trust::Any)
            .unwrap()
            .unwrap()
    }

    fn acl(text: &str) -> Acl {
        let mut src = MemSource::new();
        src.insert_text("/etc/qemu/bridge.conf", text);
        parse_acl(Path::new("/etc/qemu/bridge.conf"), &src, &alice()).unwrap()
    }

    fn privileged(acl_text: &str) -> Mode {
        Mode::Privileged {
            caller: alice(),
            acl: Ok(acl(acl_text)),
            reads_config: true,
        }
    }

    fn name(s: &str) -> IfName {
        IfName::parse(s).unwrap()
    }

    fn ifup(net: &mut FakeNet, mode: &Mode, conf: Option<&str>, t: &str) -> Result<Outcome, Error> {
        let c = conf.map(config);
        up(
            net,
            mode,
            c.as_ref(),
            "/etc/qemu-ifup-rs.conf",
            &name(t),
            false,
            None,
        )
    }

    fn ifdown(net: &mut FakeNet, mode: &Mode, t: &str) -> Result<Outcome, Error> {
        down(net, mode, &name(t), false, None)
    }

    /// A refusal: exit status, words in the one-line message, and no change asked of the kernel.
    #[track_caller]
    fn refused(net: &FakeNet, r: Result<Outcome, Error>, code: i32, words: &[&str]) -> Error {
        let e = r.expect_err("refused");
        let msg = e.to_string();
        assert_eq!(e.exit_code(), code, "{msg}");
        for w in words {
            assert!(msg.contains(w), "{w:?} not in {msg:?}");
        }
        assert!(net.calls.is_empty(), "changes asked for: {:?}", net.calls);
        e
    }

    #[test]
    fn ifup_attaches_the_callers_tap() {
        let mut net = world();
        let o = ifup(
            &mut net,
            &privileged("allow br0"),
            Some("bridge br0"),
            "vmtap0",
        )
        .unwrap();
        let t = net.link("vmtap0");
        assert_eq!((t.master, t.mtu, t.up), (Some(2), 1400, true));
        assert_eq!(t.address.as_deref(), Some(&[0xfe, 0x54, 0, 0, 0, 10][..]));
        assert_eq!(net.calls.len(), 1, "one message: {:?}", net.calls);
        assert!(o.changes[0].starts_with("tap vmtap0 -> bridge br0: "));
        // Again: nothing to do.
        net.calls.clear();
        let o = ifup(
            &mut net,
            &privileged("allow br0"),
            Some("bridge br0"),
            "vmtap0",
        )
        .unwrap();
        assert!(net.calls.is_empty() && o.changes.is_empty());
    }

    #[test]
    fn ifup_refuses_what_is_not_a_tap() {
        let mut net = world();
        net.links.push(Link {
            tun: Some(TunInfo {
                tap: false,
                owner: Some(ALICE),
                group: None,
                persist: true,
            }),
            ..base(11, "tun0", Some("tun"))
        });
        for mode in [Mode::Trusted, privileged("allow all")] {
            for (dev, what) in [
                ("tun0", "a tun device"),
                ("veth0", "a veth device"),
                ("br1", "a bridge device"),
                ("lo", "the loopback device"),
            ] {
                let r = ifup(&mut net, &mode, Some("bridge br0"), dev);
                let e = refused(&net, r, 1, &[dev, what, "not a tap"]);
                assert!(e.is_denial());
                let r = ifdown(&mut net, &mode, dev);
                refused(&net, r, 1, &[dev, "not a tap"]);
            }
        }
    }

    #[test]
    fn missing_tap() {
        let mut net = world();
        let r = ifup(&mut net, &Mode::Trusted, Some("bridge br0"), "nope");
        refused(&net, r, 1, &["tap nope does not exist", "ifname="]);
        // qemu-ifdown: success, nothing to do.
        let o = ifdown(&mut net, &privileged("allow all"), "nope").unwrap();
        assert!(o.changes.is_empty() && net.calls.is_empty());
    }

    #[test]
    fn only_the_callers_own_tap() {
        let mode = privileged("allow all");
        for (owner, group, why) in [
            (Some(BOB), None, NotCallers::Owner { owner: BOB }),
            // A group alice is in does not make bob's tap hers.
            (Some(BOB), Some(KVM), NotCallers::Owner { owner: BOB }),
            // Her own tap in a group she is not in: the kernel would refuse her too.
            (Some(ALICE), Some(4242), NotCallers::Group { group: 4242 }),
            (None, Some(4242), NotCallers::Group { group: 4242 }),
            (None, None, NotCallers::Unclaimed),
        ] {
            let mut net = world();
            net.links.push(tap(20, "vmx", owner, group));
            let r = ifup(&mut net, &mode, Some("bridge br0"), "vmx");
            let e = refused(
                &net,
                r,
                1,
                &["tap vmx, bridge br0", "denied", "not the caller's"],
            );
            assert!(
                matches!(&e, Error::Denied { reason: Denial::NotCallers { why: w, .. }, .. } if *w == why),
                "{e:?}"
            );
            // qemu-ifdown of it, attached to br0: refused, left attached.
            net.links.last_mut().unwrap().master = Some(2);
            let r = ifdown(&mut net, &mode, "vmx");
            refused(&net, r, 1, &["tap vmx, bridge br0", "not the caller's"]);
            assert_eq!(net.link("vmx").master, Some(2));
        }
        // The group alone is enough when no owner is set.
        let mut net = world();
        net.links.push(tap(20, "vmx", None, Some(KVM)));
        ifup(&mut net, &mode, Some("bridge br0"), "vmx").unwrap();
        // As root (no ACL, no ownership rule) anyone's tap is attached.
        let mut net = world();
        net.links.push(tap(20, "vmx", Some(BOB), None));
        ifup(&mut net, &Mode::Trusted, Some("bridge br0"), "vmx").unwrap();
    }

    #[test]
    fn rule_is_chosen_by_the_kernels_name_not_an_altname() {
        // root/udev gave vm-dmz-a the altname u1-dmz; the rule for vm-dmz-* must apply.
        let conf = "bridge br1\ntap vm-dmz-* bridge br0 isolated on learning off\n";
        let mut net = world();
        net.links.push(tap(20, "vm-dmz-a", Some(ALICE), None));
        net.altnames.push(("u1-dmz".into(), 20));
        let o = ifup(&mut net, &privileged("allow all"), Some(conf), "u1-dmz").unwrap();
        let t = net.link("vm-dmz-a");
        assert_eq!(t.master, Some(2));
        assert_eq!(
            t.port,
            Some(PortFlags {
                isolated: true,
                learning: false,
                ..PortFlags::NEW_PORT
            })
        );
        // Messages and logs name the tap by the kernel's name.
        assert!(
            o.changes[0].starts_with("tap vm-dmz-a -> bridge br0"),
            "{o:?}"
        );
        assert!(!o.changes[0].contains("u1-dmz"));
    }

    #[test]
    fn bridge_missing_or_not_a_bridge() {
        let mut net = world();
        let r = ifup(
            &mut net,
            &privileged("allow all"),
            Some("tap vm* bridge brX"),
            "vmtap0",
        );
        refused(
            &net,
            r,
            1,
            &[
                "tap vmtap0, bridge brX",
                "does not exist",
                "tap rule \"vm*\" at /etc/qemu-ifup-rs.conf:1",
            ],
        );
        let r = ifup(&mut net, &Mode::Trusted, Some("bridge veth0"), "vmtap0");
        refused(
            &net,
            r,
            1,
            &[
                "bridge veth0",
                "a veth device, not a bridge",
                "bridge line at",
            ],
        );
        // A caller who cannot read the config sees where the rule is, not its glob.
        let mode = Mode::Privileged {
            caller: alice(),
            acl: Ok(acl("allow all")),
            reads_config: false,
        };
        let r = ifup(&mut net, &mode, Some("tap vm* bridge brX"), "vmtap0");
        let e = refused(&net, r, 1, &["tap rule at /etc/qemu-ifup-rs.conf:1"]);
        assert!(!e.to_string().contains("vm*"));
    }

    #[test]
    fn acl_denials() {
        let cases = [
            (
                "allow br1",
                "does not allow bridge br0 to uid 1000 (the admin can add `allow br0`)",
            ),
            (
                "allow all\ndeny br0",
                "bridge br0 is denied to uid 1000 by /etc/qemu/bridge.conf:2",
            ),
            (
                "deny all\nallow br0",
                "bridge br0 is denied to uid 1000 by /etc/qemu/bridge.conf:1",
            ),
        ];
        for (text, why) in cases {
            let mut net = world();
            let r = ifup(&mut net, &privileged(text), Some("bridge br0"), "vmtap0");
            refused(&net, r, 1, &["tap vmtap0, bridge br0", "denied", why]);
        }
        let mut net = world();
        let mode = Mode::Privileged {
            caller: alice(),
            acl: Err("/etc/qemu/bridge.conf:3: invalid line".into()),
            reads_config: true,
        };
        let r = ifup(&mut net, &mode, Some("bridge br0"), "vmtap0");
        refused(
            &net,
            r,
            1,
            &["ACL cannot be used", "bridge.conf:3: invalid line"],
        );
        // The default route's bridge needs the ACL too.
        let mut net = world();
        net.table.push(default_route(false, 0, vec![3]));
        let r = ifup(&mut net, &privileged("allow br0"), None, "vmtap0");
        refused(&net, r, 1, &["bridge br1", "does not allow"]);
    }

    #[test]
    fn no_move_between_bridges_in_privileged_mode() {
        let mut net = world();
        net.links[4].master = Some(3);
        let r = ifup(
            &mut net,
            &privileged("allow all"),
            Some("bridge br0"),
            "vmtap0",
        );
        refused(
            &net,
            r,
            1,
            &["already attached to br1", "moving taps between bridges"],
        );
        // The master vanished under us: named by its index.
        net.links[4].master = Some(99);
        let r = ifup(
            &mut net,
            &privileged("allow all"),
            Some("bridge br0"),
            "vmtap0",
        );
        refused(&net, r, 1, &["already attached to ifindex 99"]);
        // Root may move it.
        net.links[4].master = Some(3);
        ifup(&mut net, &Mode::Trusted, Some("bridge br0"), "vmtap0").unwrap();
        assert_eq!(net.link("vmtap0").master, Some(2));
    }

    /// A unicast default route of the main table (IPv6 or IPv4) through `devices`.
    fn default_route(ipv6: bool, metric: u32, devices: Vec<u32>) -> ifup_netlink::Route {
        ifup_netlink::Route {
            dst: if ipv6 {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            },
            dst_len: 0,
            kind: 1,
            protocol: 3,
            metric,
            devices,
        }
    }

    #[test]
    fn default_route_bridge_like_debian_and_through_multipath() {
        let route = |metric, devices| default_route(false, metric, devices);
        // No default route at all.
        let mut net = world();
        let r = ifup(&mut net, &Mode::Trusted, None, "vmtap0");
        refused(
            &net,
            r,
            1,
            &[
                "no bridge to attach to",
                "there is no default route",
                "bridge NAME",
            ],
        );
        // Via a veth only.
        net.table = vec![route(100, vec![4])];
        let r = ifup(&mut net, &Mode::Trusted, None, "vmtap0");
        refused(&net, r, 1, &["no default route goes via a bridge", "veth0"]);
        // Two default routes, the first (metric 100) via the veth, the second via br1: br1, as
        // Debian's script picks.
        net.table = vec![route(100, vec![4]), route(200, vec![3])];
        ifup(&mut net, &Mode::Trusted, None, "vmtap0").unwrap();
        assert_eq!(net.link("vmtap0").master, Some(3));
        // A multipath default route with a bridge among its next hops.
        let mut net = world();
        net.table = vec![route(0, vec![4, 2])];
        ifup(&mut net, &Mode::Trusted, None, "vmtap0").unwrap();
        assert_eq!(net.link("vmtap0").master, Some(2));
        // An IPv6 default route when IPv4 has no bridge.
        let mut net = world();
        net.table = vec![route(0, vec![4]), default_route(true, 1024, vec![3])];
        ifup(&mut net, &Mode::Trusted, None, "vmtap0").unwrap();
        assert_eq!(net.link("vmtap0").master, Some(3));
        // IPv4 before IPv6, whatever the metrics: an IPv4 default route via br0 wins over an
        // IPv6 one via br1 with a lower metric.
        let mut net = world();
        net.table = vec![default_route(true, 1, vec![3]), route(500, vec![2])];
        ifup(&mut net, &Mode::Trusted, None, "vmtap0").unwrap();
        assert_eq!(net.link("vmtap0").master, Some(2));
        // Privileged mode: the tap is checked before the missing bridge is reported.
        let mut net = world();
        net.links.push(tap(20, "vmx", Some(BOB), None));
        let r = ifup(&mut net, &privileged("allow all"), None, "vmx");
        refused(&net, r, 1, &["not the caller's"]);
    }

    #[test]
    fn plan_errors_change_nothing() {
        let mut net = world();
        let r = ifup(
            &mut net,
            &Mode::Trusted,
            Some("bridge br0 vlan 20"),
            "vmtap0",
        );
        refused(&net, r, 1, &["tap vmtap0, bridge br0", "vlan_filtering 1"]);
        let r = ifup(
            &mut net,
            &Mode::Trusted,
            Some("bridge br0 mtu 65535"),
            "vmtap0",
        );
        refused(&net, r, 1, &["mtu 65535", "at most 65521"]);
        // Also on an attached, up tap: it stays as it was.
        ifup(&mut net, &Mode::Trusted, Some("bridge br0"), "vmtap0").unwrap();
        net.calls.clear();
        let before = net.link("vmtap0").clone();
        let r = ifup(
            &mut net,
            &Mode::Trusted,
            Some("bridge br0 mtu 65535"),
            "vmtap0",
        );
        refused(&net, r, 1, &["mtu 65535"]);
        assert_eq!(net.link("vmtap0"), &before);
    }

    #[test]
    fn a_failed_step_puts_the_tap_back_as_it_was() {
        // A fresh tap: the attach works, the bridge-port step fails.
        let mut net = world();
        let before = net.link("vmtap0").clone();
        net.fail_changes = vec![(1, Errno::EINVAL)];
        let r = ifup(
            &mut net,
            &Mode::Trusted,
            Some("bridge br0 isolated on"),
            "vmtap0",
        );
        let e = r.unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("setting bridge-port options failed"), "{msg}");
        assert!(msg.contains("the tap was put back as it was"), "{msg}");
        assert_eq!(e.exit_code(), 1);
        let after = net.link("vmtap0");
        assert_eq!(
            (after.master, after.mtu, after.up, &after.address),
            (before.master, before.mtu, before.up, &before.address)
        );
        // An attached, up tap whose rule gained options: the MTU changes, the flags fail; the
        // MTU goes back and the tap stays on its bridge, up.
        let mut net = world();
        ifup(&mut net, &Mode::Trusted, Some("bridge br0"), "vmtap0").unwrap();
        let before = net.link("vmtap0").clone();
        net.calls.clear();
        net.fail_changes = vec![(1, Errno::EINVAL)];
        let r = ifup(
            &mut net,
            &Mode::Trusted,
            Some("bridge br0 mtu 1300 isolated on"),
            "vmtap0",
        );
        assert!(r.unwrap_err().to_string().contains("put back as it was"));
        assert_eq!(net.link("vmtap0"), &before);
        // "Not permitted" on the first step: nothing was changed, nothing to undo.
        let mut net = world();
        net.fail_changes = vec![(0, Errno::EPERM)];
        let e = ifup(&mut net, &Mode::Trusted, Some("bridge br0"), "vmtap0").unwrap_err();
        assert!(e.to_string().contains("nothing else was changed"), "{e}");
        assert_eq!(net.calls.len(), 1);
        // The undo failing too is said.
        let mut net = world();
        net.fail_changes = vec![(1, Errno::EINVAL), (2, Errno::EBUSY)];
        let e = ifup(
            &mut net,
            &Mode::Trusted,
            Some("bridge br0 isolated on"),
            "vmtap0",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("putting the tap back as it was failed too"),
            "{e}"
        );
    }

    #[test]
    fn ifdown_detaches_only_from_an_allowed_bridge() {
        let mode = privileged("allow br0");
        let mut net = world();
        ifup(&mut net, &mode, Some("bridge br0"), "vmtap0").unwrap();
        net.calls.clear();
        let o = ifdown(&mut net, &mode, "vmtap0").unwrap();
        let t = net.link("vmtap0");
        assert_eq!((t.master, t.up), (None, false));
        assert_eq!(o.changes, ["tap vmtap0: detach from br0, set down"]);
        // Not attached and down: nothing to do.
        net.calls.clear();
        ifdown(&mut net, &mode, "vmtap0").unwrap();
        assert!(net.calls.is_empty());
        // On a bridge the ACL does not allow.
        let mut net = world();
        net.links[4].master = Some(3);
        let r = ifdown(&mut net, &mode, "vmtap0");
        refused(&net, r, 1, &["tap vmtap0, bridge br1", "does not allow"]);
        // On a master that is not a bridge, or that cannot be looked up.
        net.links[4].master = Some(4);
        let r = ifdown(&mut net, &mode, "vmtap0");
        refused(&net, r, 1, &["a veth device, not a bridge"]);
        net.links[4].master = Some(99);
        let r = ifdown(&mut net, &mode, "vmtap0");
        refused(&net, r, 1, &["ifindex 99", "cannot be looked up"]);
        // Root: any master.
        ifdown(&mut net, &Mode::Trusted, "vmtap0").unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn ifdown_of_a_tap_that_vanishes_is_success() {
        let mut net = world();
        net.links[4].master = Some(2);
        net.fail_changes = vec![(0, Errno::ENODEV)];
        let o = ifdown(&mut net, &Mode::Trusted, "vmtap0").unwrap();
        assert!(o.changes.is_empty());
    }

    #[test]
    fn bridge_helper_checks_the_bridge_before_making_a_tap() {
        let bh = |net: &mut FakeNet, mode: &Mode, conf: Option<&str>, br: &str| {
            let c = conf.map(config);
            helper(net, mode, c.as_ref(), &name(br), true)
        };
        // A bridge the ACL does not allow, one that does not exist, one that is not a bridge:
        // refused, and no tap was made.
        for (mode, br, words) in [
            (
                privileged("allow br1"),
                "br0",
                &["bridge br0", "denied", "does not allow bridge br0"][..],
            ),
            (
                privileged("allow all\ndeny br0"),
                "br0",
                &["bridge br0", "denied", "bridge.conf:2"],
            ),
            (
                Mode::Trusted,
                "brX",
                &["bridge brX", "does not exist", "--br"],
            ),
            (
                Mode::Trusted,
                "veth0",
                &["bridge veth0", "a veth device, not a bridge"],
            ),
        ] {
            let mut net = world();
            let e = bh(&mut net, &mode, None, br).unwrap_err();
            let msg = e.to_string();
            for w in words {
                assert!(msg.contains(w), "{w:?} not in {msg:?}");
            }
            assert!(!msg.contains("tap0"), "{msg}");
            assert!(net.calls.is_empty(), "{:?}", net.calls);
        }
        // Allowed: a tap is made, gets the options of the rule for (bridge, its name), and is
        // attached and up.
        let mut net = world();
        let conf = "bridge br1\ntap tap* bridge br1 isolated on\ntap tap* bridge br0 hairpin on mtu 1300\n";
        let (o, tap) = bh(&mut net, &privileged("allow br0"), Some(conf), "br0").unwrap();
        assert_eq!(tap.name, "tap0");
        assert!(tap.vnet_hdr);
        let t = net.link("tap0");
        assert_eq!((t.master, t.mtu, t.up), (Some(2), 1300, true));
        assert!(t.port.unwrap().hairpin && !t.port.unwrap().isolated);
        assert!(
            o.changes[0].starts_with("tap tap0 (new, vnet_hdr) -> bridge br0: "),
            "{o:?}"
        );
        assert!(net.calls[0].starts_with("create_tap"));
        // No rule for the bridge: the defaults (the bridge's MTU, an fe: MAC).
        let mut net = world();
        let (_, _) = bh(&mut net, &Mode::Trusted, Some("bridge br1\n"), "br0").unwrap();
        let t = net.link("tap0");
        assert_eq!((t.master, t.mtu), (Some(2), 1400));
        assert_eq!(t.address.as_ref().map(|a| a[0]), Some(0xfe));
        // A caller who cannot read the config sees where the rule is, not its glob, here too.
        let mode = Mode::Privileged {
            caller: alice(),
            acl: Ok(acl("allow all")),
            reads_config: false,
        };
        let mut net = world();
        let e = bh(
            &mut net,
            &mode,
            Some("tap tap* bridge br0 mtu 65535\n"),
            "br0",
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("mtu 65535 (tap rule at /etc/qemu-ifup-rs.conf:1)"),
            "{msg}"
        );
        assert!(!msg.contains("tap*"), "{msg}");
    }

    fn v4(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn routed_tap_up_and_down() {
        let conf = "tap vmtap0 route 192.0.2.10,2001:db8::10 proxy-arp on\n";
        let mut net = world();
        let o = ifup(
            &mut net,
            &privileged("# no bridge is involved"),
            Some(conf),
            "vmtap0",
        )
        .unwrap();
        let t = net.link("vmtap0");
        assert!(t.up && t.master.is_none());
        assert_eq!(t.proxy_arp, Some(true));
        assert_eq!(net.table.len(), 2);
        assert!(net
            .table
            .iter()
            .all(|r| r.devices == [10] && r.protocol == plan::ROUTE_PROTOCOL));
        assert_eq!(
            o.routed,
            Some(Families {
                ipv4: true,
                ipv6: true
            })
        );
        // Again: in place, nothing to do.
        net.calls.clear();
        ifup(&mut net, &privileged(""), Some(conf), "vmtap0").unwrap();
        assert!(net.calls.is_empty(), "{:?}", net.calls);
        // A route someone else added by hand to the same tap stays at qemu-ifdown.
        net.table.push(ifup_netlink::Route {
            dst: v4("198.51.100.1"),
            dst_len: 32,
            kind: 1,
            protocol: 4,
            metric: 0,
            devices: vec![10],
        });
        let o = ifdown(&mut net, &privileged(""), "vmtap0").unwrap();
        assert_eq!(net.table.len(), 1);
        assert_eq!(net.table[0].dst, v4("198.51.100.1"));
        assert!(!net.link("vmtap0").up);
        assert!(o.changes[0].contains("remove route 192.0.2.10"), "{o:?}");
        // Routes already gone (the kernel drops IPv4 routes of a downed device): success.
        let mut net = world();
        ifup(&mut net, &Mode::Trusted, Some(conf), "vmtap0").unwrap();
        let ours: Vec<_> = net.table.clone();
        net.fail_changes = vec![(3, Errno::ESRCH)];
        net.table = ours;
        ifdown(&mut net, &Mode::Trusted, "vmtap0").unwrap();
    }

    #[test]
    fn a_routed_address_taken_elsewhere_is_refused() {
        let conf = "tap vmtap0 route 192.0.2.10,2001:db8::10\n";
        for (devices, via) in [
            (vec![4], "veth0"),
            (vec![], "no device"),
            (vec![10, 4], "vmtap0, veth0"),
        ] {
            let mut net = world();
            net.table.push(ifup_netlink::Route {
                dst: v4("2001:db8::10"),
                dst_len: 128,
                kind: if devices.is_empty() { 6 } else { 1 },
                protocol: 4,
                metric: 0,
                devices,
            });
            let r = ifup(&mut net, &Mode::Trusted, Some(conf), "vmtap0");
            refused(
                &net,
                r,
                1,
                &[
                    "tap vmtap0",
                    "2001:db8::10 is already routed via",
                    via,
                    "refusing",
                ],
            );
            assert_eq!(net.table.len(), 1);
        }
        // Privileged mode: only the caller's own tap, and one on no bridge.
        let mut net = world();
        net.links.push(tap(20, "vmx", Some(BOB), None));
        let r = ifup(
            &mut net,
            &privileged("allow all"),
            Some("tap vmx route 192.0.2.10\n"),
            "vmx",
        );
        refused(&net, r, 1, &["not the caller's"]);
        let mut net = world();
        net.links[4].master = Some(2);
        let r = ifup(&mut net, &privileged("allow all"), Some(conf), "vmtap0");
        refused(&net, r, 1, &["a routed tap is on no bridge"]);
        // Root's routed tap on a bridge: detached.
        ifup(&mut net, &Mode::Trusted, Some(conf), "vmtap0").unwrap();
        assert_eq!(net.link("vmtap0").master, None);
    }

    #[test]
    fn a_failed_route_puts_everything_back() {
        let conf = "tap vmtap0 route 192.0.2.10,192.0.2.11 proxy-arp on\n";
        let mut net = world();
        let before = net.link("vmtap0").clone();
        // The link change works, the first route too, the second fails.
        net.fail_changes = vec![(2, Errno::ENETUNREACH)];
        let e = ifup(&mut net, &Mode::Trusted, Some(conf), "vmtap0").unwrap_err();
        assert!(e.to_string().contains("adding a route failed"), "{e}");
        assert!(e.to_string().contains("put back as it was"), "{e}");
        assert!(net.table.is_empty(), "{:?}", net.table);
        assert_eq!(net.link("vmtap0"), &before);
    }

    #[test]
    fn a_declared_bridge_is_created_on_first_use() {
        let conf =
            "create-bridge br-priv address 10.10.0.1/24\ntap vm* bridge br-priv isolated on\n";
        let mut net = world();
        let o = ifup(&mut net, &privileged("allow br-priv"), Some(conf), "vmtap0").unwrap();
        let b = net.link("br-priv").clone();
        assert!(b.is_bridge() && b.up);
        assert_eq!(b.address.as_ref().unwrap()[0], 0x02);
        assert_eq!(net.addresses, [(b.index, v4("10.10.0.1"), 24)]);
        let t = net.link("vmtap0");
        assert_eq!(t.master, Some(b.index));
        assert!(t.port.unwrap().isolated);
        assert!(
            o.changes[0].starts_with("bridge br-priv: create bridge br-priv"),
            "{o:?}"
        );
        // Someone else created it meanwhile (EEXIST) and added the address: we go on, quietly.
        let mut net = world();
        net.links.push(bridge(30, "br-priv", 1500));
        net.addresses.push((30, v4("10.10.0.1"), 24));
        ifup(&mut net, &Mode::Trusted, Some(conf), "vmtap0").unwrap();
        assert_eq!(net.link("vmtap0").master, Some(30));
        // Not allowed to the caller: not created, nothing changed.
        let mut net = world();
        let r = ifup(&mut net, &privileged("allow br0"), Some(conf), "vmtap0");
        refused(
            &net,
            r,
            1,
            &["bridge br-priv", "does not allow bridge br-priv"],
        );
        assert!(net.links.iter().all(|l| l.name != "br-priv"));
        // A device of that name that is no bridge: refused.
        let mut net = world();
        net.links.push(base(30, "br-priv", Some("veth")));
        let r = ifup(&mut net, &Mode::Trusted, Some(conf), "vmtap0");
        refused(
            &net,
            r,
            1,
            &["bridge br-priv", "a veth device, not a bridge"],
        );
        // Dry run: says it would create it, creates nothing.
        let mut net = world();
        let c = config(conf);
        let o = up(
            &mut net,
            &Mode::Trusted,
            Some(&c),
            "x",
            &name("vmtap0"),
            true,
            None,
        )
        .unwrap();
        assert!(
            o.stdout
                .contains("create bridge br-priv (stp off, forward delay 0"),
            "{}",
            o.stdout
        );
        assert!(net.calls.is_empty());
    }

    #[test]
    fn dry_run_changes_nothing_and_shows_the_plan() {
        let mut net = world();
        let c = config("bridge br0 isolated on");
        let o = up(
            &mut net,
            &privileged("allow br0"),
            Some(&c),
            "x",
            &name("vmtap0"),
            true,
            Some("privileges: P"),
        )
        .unwrap();
        assert!(net.calls.is_empty());
        assert_eq!(
            o.stdout,
            "tap vmtap0 (ifindex 10), bridge br0 (ifindex 2, bridge line at /etc/qemu-ifup-rs.conf:1)\n  \
             privileges: P\n  set address fe:54:00:00:00:0a\n  set mtu 1400\n  attach to bridge br0\n  \
             set bridge-port isolated on\n  set up\n"
        );
        let o = down(
            &mut net,
            &privileged("allow br0"),
            &name("vmtap0"),
            true,
            None,
        )
        .unwrap();
        assert_eq!(
            o.stdout,
            "tap vmtap0 (ifindex 10), on no bridge\n  nothing to do: not attached, no route of ours, down\n"
        );
        let o = down(&mut net, &Mode::Trusted, &name("gone"), true, None).unwrap();
        assert_eq!(o.stdout, "tap gone: does not exist, nothing to do\n");
    }
}
