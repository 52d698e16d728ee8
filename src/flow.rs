//! What both programs do once started: look up what the decisions need, decide, plan, and apply
//! the plan in one loop (with its undo on failure) or, for `--dry-run`, describe it. Everything
//! goes through [`Net`], so the whole flow runs against the recording fake in the tests below.

use ifup_netlink::{Errno, Link, NetlinkError};
use ifup_policy::{Config, IfName};

use crate::decide::{self, BridgeFacts, DownFacts, Mode, Tap, UpFacts};
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
/// bridge.
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
        Some((choice, origin)) => {
            let link = net.link_by_name(choice.bridge.as_str()).map_err(&err)?;
            let found = link.clone();
            (
                BridgeFacts::Rule {
                    choice,
                    origin,
                    link,
                },
                found,
            )
        }
        None => {
            let routes = net.default_routes().map_err(&err)?;
            let mut candidates = Vec::new();
            'routes: for route in &routes {
                for &dev in &route.devices {
                    let link = net.link_by_index(dev).map_err(&err)?;
                    let is_bridge = link.as_ref().is_some_and(Link::is_bridge);
                    candidates.push(link);
                    if is_bridge {
                        break 'routes;
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
    let a = decide::up(mode, config_desc, facts)?;
    let origin = a.origin.to_string();
    let plan = plan::up(&a).map_err(|e| Error::Invalid {
        at: Subject::new(&a.tap.name, Some(&a.bridge.name)),
        reason: e.reason(&a.bridge, &origin),
    })?;
    let (tap, bridge) = (&a.tap, &a.bridge);
    if dry_run {
        let mut out = format!(
            "tap {} (ifindex {}), bridge {} (ifindex {}, {origin})\n",
            tap.name, tap.link.index, bridge.name, bridge.index
        );
        if let Some(note) = note {
            out.push_str(&format!("  {note}\n"));
        }
        push_steps(&mut out, &plan, &bridge.name, "already attached and up");
        return Ok(Outcome {
            stdout: out,
            changes: vec![],
            bridge: Some(a.bridge),
        });
    }
    if plan.is_empty() {
        return Ok(Outcome::default());
    }
    apply(net, tap, Some(&bridge.name), &plan)?;
    Ok(Outcome {
        stdout: String::new(),
        changes: vec![format!(
            "tap {} -> bridge {}: {} ({origin})",
            tap.name,
            bridge.name,
            plan.describe(&bridge.name).join(", ")
        )],
        bridge: Some(a.bridge),
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
    let plan = plan::down(&d);
    let bridge = d.master.as_ref().map_or("(none)", |m| m.name.as_str());
    if dry_run {
        let mut out = format!(
            "tap {} (ifindex {}), bridge {bridge}\n",
            d.tap.name, d.tap.link.index
        );
        if let Some(note) = note {
            out.push_str(&format!("  {note}\n"));
        }
        push_steps(&mut out, &plan, bridge, "not attached and down");
        return Ok(Outcome {
            stdout: out,
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
    let name = IfName::parse(&link.name).map_err(|e| Error::Invalid {
        at: Subject::new(&new.name, Some(&bridge.name)),
        reason: e.to_string(),
    })?;
    let (options, origin) = match config.and_then(|c| c.choose_for_bridge(&name, bridge_name)) {
        Some(choice) => (
            choice.options,
            decide::Origin::Config(choice.origin.to_string()),
        ),
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
    let plan = plan::up(&a).map_err(|e| Error::Invalid {
        at: Subject::new(&a.tap.name, Some(&a.bridge.name)),
        reason: e.reason(&a.bridge, &a.origin.to_string()),
    })?;
    apply(net, &a.tap, Some(&a.bridge.name), &plan)?;
    let outcome = Outcome {
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

fn push_steps(out: &mut String, plan: &Plan, bridge: &str, nothing: &str) {
    let lines = plan.describe(bridge);
    if lines.is_empty() {
        out.push_str(&format!("  nothing to do: {nothing}\n"));
    }
    for l in lines {
        out.push_str(&format!("  {l}\n"));
    }
}

fn run_step(net: &mut dyn Net, index: u32, step: &Step) -> Result<(), NetlinkError> {
    match step {
        Step::Link(c) => net.set_link(index, c),
        Step::Port(p) => net.set_bridge_port(index, p),
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
    use ifup_netlink::{BridgeInfo, DefaultRoute, PortFlags, TunInfo};
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
        net.routes.push(DefaultRoute {
            ipv6: false,
            metric: 0,
            devices: vec![3],
        });
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

    #[test]
    fn default_route_bridge_like_debian_and_through_multipath() {
        let route = |metric, devices| DefaultRoute {
            ipv6: false,
            metric,
            devices,
        };
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
        net.routes = vec![route(100, vec![4])];
        let r = ifup(&mut net, &Mode::Trusted, None, "vmtap0");
        refused(&net, r, 1, &["no default route goes via a bridge", "veth0"]);
        // Two default routes, the first (metric 100) via the veth, the second via br1: br1, as
        // Debian's script picks.
        net.routes = vec![route(100, vec![4]), route(200, vec![3])];
        ifup(&mut net, &Mode::Trusted, None, "vmtap0").unwrap();
        assert_eq!(net.link("vmtap0").master, Some(3));
        // A multipath default route with a bridge among its next hops.
        let mut net = world();
        net.routes = vec![route(0, vec![4, 2])];
        ifup(&mut net, &Mode::Trusted, None, "vmtap0").unwrap();
        assert_eq!(net.link("vmtap0").master, Some(2));
        // An IPv6 default route when IPv4 has no bridge.
        let mut net = world();
        net.routes = vec![
            route(0, vec![4]),
            DefaultRoute {
                ipv6: true,
                metric: 1024,
                devices: vec![3],
            },
        ];
        ifup(&mut net, &Mode::Trusted, None, "vmtap0").unwrap();
        assert_eq!(net.link("vmtap0").master, Some(3));
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
            "tap vmtap0 (ifindex 10), bridge (none)\n  nothing to do: not attached and down\n"
        );
        let o = down(&mut net, &Mode::Trusted, &name("gone"), true, None).unwrap();
        assert_eq!(o.stdout, "tap gone: does not exist, nothing to do\n");
    }
}
