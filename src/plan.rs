//! From a decision and the kernel's state to the exact changes: an ordered list of steps and one
//! undo that puts the tap back as it was before the run. Pure, unit-tested without root.
//!
//! qemu-ifup converges the tap to its rule: host-side MAC, MTU, master, bridge-port flags (a
//! flag the rule does not set goes back to what the kernel gives a new port), VLANs, and up. A
//! second run on a converged tap plans nothing. A tap that joins its bridge with bridge-port
//! settings to apply joins down (in a message of its own, before the attach) and comes up only
//! once they are in place, so it never forwards a frame with the bridge's defaults.

use ifup_netlink::{BridgePort, Link, LinkChange, PortFlags, Route, RouteSpec, VlanEntry};
use ifup_policy::{Mtu, PortOptions, TapMac};

use crate::decide::{Attach, Detach, Routed};

/// The `rtm_protocol` the helper's routes carry, so that `qemu-ifdown` removes exactly those
/// (`ip route` shows it as `proto 112`, or by the name the packages give it in
/// `/etc/iproute2/rt_protos.d/qemu-ifup-rs.conf`).
pub const ROUTE_PROTOCOL: u8 = 112;

/// One change to the tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An `RTM_SETLINK` on the tap.
    Link(LinkChange),
    /// Its bridge-port flags and VLANs.
    Port(BridgePort),
    /// A route to it.
    AddRoute(RouteSpec),
    /// A route to it, removed (one that is gone already is no error).
    DelRoute(RouteSpec),
}

impl Step {
    /// What the step does, for a failure message: "attaching the tap", "setting bridge-port
    /// options", ...
    pub fn action(&self) -> &'static str {
        match self {
            Step::Port(_) => "setting bridge-port options",
            Step::AddRoute(_) => "adding a route",
            Step::DelRoute(_) => "removing a route",
            Step::Link(c) if c.proxy_arp.is_some() && c.master.is_none() && c.mtu.is_none() => {
                "setting proxy ARP"
            }
            Step::Link(c) if c.master == Some(0) => "detaching the tap",
            Step::Link(c) if c.master.is_some() => "attaching the tap",
            Step::Link(c) if c.mtu.is_some() && c.address.is_some() => {
                "setting the tap's address and MTU"
            }
            Step::Link(c) if c.mtu.is_some() => "setting the tap's MTU",
            Step::Link(c) if c.address.is_some() => "setting the tap's address",
            Step::Link(c) if c.up == Some(true) => "bringing the tap up",
            Step::Link(_) => "setting the tap down",
        }
    }

    /// One line per change, for --dry-run and syslog.
    pub fn describe(&self, bridge: &str) -> Vec<String> {
        let mut out = Vec::new();
        match self {
            Step::Link(c) => {
                if let Some(mac) = c.address {
                    out.push(format!("set address {}", fmt_mac(&mac)));
                }
                if let Some(mtu) = c.mtu {
                    out.push(format!("set mtu {mtu}"));
                }
                match c.master {
                    Some(0) => out.push(format!("detach from {bridge}")),
                    Some(_) => out.push(format!("attach to bridge {bridge}")),
                    None => {}
                }
                if let Some(on) = c.proxy_arp {
                    out.push(format!("set proxy-arp {}", if on { "on" } else { "off" }));
                }
                match c.up {
                    Some(true) => out.push("set up".into()),
                    Some(false) => out.push("set down".into()),
                    None => {}
                }
            }
            Step::AddRoute(r) => out.push(format!("add route {}", fmt_route(r))),
            Step::DelRoute(r) => out.push(format!("remove route {}", fmt_route(r))),
            Step::Port(p) => {
                for (name, v) in [
                    ("isolated", p.isolated),
                    ("hairpin", p.hairpin),
                    ("learning", p.learning),
                    ("flood", p.flood),
                ] {
                    if let Some(v) = v {
                        out.push(format!(
                            "set bridge-port {name} {}",
                            if v { "on" } else { "off" }
                        ));
                    }
                }
                for v in &p.del_vlans {
                    out.push(format!("remove vlan {}", fmt_vids(v)));
                }
                for v in &p.add_vlans {
                    out.push(format!("add vlan {}", fmt_vlan(v)));
                }
            }
        }
        out
    }
}

/// The changes, in order, and the undo that restores the state before the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub undo: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Every change, one line each.
    pub fn describe(&self, bridge: &str) -> Vec<String> {
        let down_only = Step::Link(LinkChange {
            up: Some(false),
            ..LinkChange::default()
        });
        let mut out = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let port_follows = self.steps[i..].iter().any(|s| matches!(s, Step::Port(_)));
            if *step == down_only && port_follows {
                out.push("set down until the bridge-port options are in place".to_owned());
            } else {
                out.extend(step.describe(bridge));
            }
        }
        out
    }
}

fn fmt_vids(v: &VlanEntry) -> String {
    if v.first == v.last {
        v.first.to_string()
    } else {
        format!("{}-{}", v.first, v.last)
    }
}

fn fmt_vlan(v: &VlanEntry) -> String {
    let mut s = fmt_vids(v);
    if v.pvid {
        s.push_str(" pvid");
    }
    if v.untagged {
        s.push_str(" untagged");
    }
    if !v.pvid && !v.untagged {
        s.push_str(" tagged");
    }
    s
}

fn fmt_route(r: &RouteSpec) -> String {
    let max = if r.dst.is_ipv4() { 32 } else { 128 };
    if r.dst_len == max {
        r.dst.to_string()
    } else {
        format!("{}/{}", r.dst, r.dst_len)
    }
}

pub fn fmt_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Why a plan cannot be made (before anything changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// `vlan`/`tagged` on a bridge without `vlan_filtering 1`, or on a kernel without bridge
    /// VLAN filtering at all ([`PlanError::reason`] tells which).
    NeedsVlanFiltering,
    /// The MTU is more than the tap accepts (`IFLA_MAX_MTU`; 65521 for a tap).
    MtuAboveMax { mtu: u32, max: u32, auto: bool },
}

impl PlanError {
    /// The reason, for the one-line error message; `origin` names the config line.
    pub fn reason(&self, bridge: &Link, origin: &str) -> String {
        match self {
            PlanError::NeedsVlanFiltering
                if bridge
                    .bridge
                    .is_some_and(|b| !b.kernel_has_vlan_filtering()) =>
            {
                format!(
                    "`vlan`/`tagged` ({origin}) need a bridge with vlan_filtering, which this \
                     kernel cannot do (built without CONFIG_BRIDGE_VLAN_FILTERING): remove them, \
                     or use a kernel that has it"
                )
            }
            PlanError::NeedsVlanFiltering => format!(
                "`vlan`/`tagged` need VLAN filtering on the bridge ({origin}): run `ip link set {} \
                 type bridge vlan_filtering 1`",
                bridge.name
            ),
            PlanError::MtuAboveMax {
                mtu,
                max,
                auto: false,
            } => format!(
                "mtu {mtu} ({origin}) is more than the tap accepts (at most {max}): lower it"
            ),
            PlanError::MtuAboveMax {
                mtu,
                max,
                auto: true,
            } => format!(
                "the bridge's MTU {mtu} is more than the tap accepts (at most {max}): set `mtu \
                 {max}` or less on the rule ({origin}), or lower the bridge's MTU"
            ),
        }
    }
}

/// The host-side MAC `tap-mac fe` gives a tap with address `mac`: the first byte set to `fe` —
/// unless it is already `f0` or above. libvirt makes the tap's MAC from the guest's with `fe`
/// first, or `fa` when the guest's starts with `fe`; rewriting that `fa` to `fe` would give the
/// tap the guest's own MAC (and the bridge would drop the guest's frames as its own).
pub fn host_side_mac(mac: &[u8]) -> Option<[u8; 6]> {
    let mut new = <[u8; 6]>::try_from(mac).ok()?;
    if new[0] >= 0xf0 {
        return None;
    }
    new[0] = 0xfe;
    Some(new)
}

/// The host-side MAC `opts` gives `tap`, when it changes it.
fn mac_change(tap: &Link, opts: &PortOptions) -> Option<[u8; 6]> {
    match opts.tap_mac {
        TapMac::Fe => tap.address.as_deref().and_then(host_side_mac),
        TapMac::Keep => None,
    }
}

/// The change that puts back, on `tap` as it is before the run, what `change` sets: its address,
/// MTU, master, up/down and proxy ARP as they were.
fn restoring(tap: &Link, change: &LinkChange) -> LinkChange {
    LinkChange {
        address: change
            .address
            .and(tap.address.as_deref().and_then(|a| a.try_into().ok())),
        mtu: change.mtu.map(|_| tap.mtu),
        master: change.master.map(|_| tap.master.unwrap_or(0)),
        up: change.up.map(|_| tap.up),
        proxy_arp: change.proxy_arp.map(|_| tap.proxy_arp.unwrap_or(false)),
    }
}

/// The route of ours to `dst/dst_len` through the tap `oif`.
fn our_route(dst: std::net::IpAddr, dst_len: u8, oif: u32) -> RouteSpec {
    RouteSpec {
        dst,
        dst_len,
        oif,
        protocol: ROUTE_PROTOCOL,
    }
}

/// The flags `opts` asks for: what it sets, the kernel's new-port value for the rest.
fn wanted_flags(opts: &PortOptions) -> PortFlags {
    let new = PortFlags::NEW_PORT;
    PortFlags {
        isolated: opts.isolated.unwrap_or(new.isolated),
        hairpin: opts.hairpin.unwrap_or(new.hairpin),
        learning: opts.learning.unwrap_or(new.learning),
        flood: opts.flood.unwrap_or(new.flood),
    }
}

/// The flag changes that take a port from `now` to `want`.
fn flag_changes(now: PortFlags, want: PortFlags) -> BridgePort {
    let pick = |a: bool, b: bool| (a != b).then_some(b);
    BridgePort {
        isolated: pick(now.isolated, want.isolated),
        hairpin: pick(now.hairpin, want.hairpin),
        learning: pick(now.learning, want.learning),
        flood: pick(now.flood, want.flood),
        ..BridgePort::default()
    }
}

/// The VLANs a port gets on a bridge whose new ports get `default_pvid` (0: none), for `opts`:
/// `vlan N` makes N the untagged PVID and drops the default VLAN (unless it is N or also
/// tagged); `tagged` adds tagged VLANs; without either, what a new port gets.
fn wanted_vlans(opts: &PortOptions, default_pvid: u16) -> Vec<VlanEntry> {
    let single = |vid: u16, pvid: bool| VlanEntry {
        first: vid,
        last: vid,
        pvid,
        untagged: pvid,
    };
    let mut out = Vec::new();
    match opts.vlan {
        Some(vid) => out.push(single(vid, true)),
        None if default_pvid != 0 && !opts.is_tagged(default_pvid) => {
            out.push(single(default_pvid, true))
        }
        None => {}
    }
    for r in &opts.tagged {
        out.push(VlanEntry {
            first: r.first,
            last: r.last,
            pvid: false,
            untagged: false,
        });
    }
    out
}

/// Every single VLAN of `entries` with its flags.
fn expand(entries: &[VlanEntry]) -> Vec<(u16, bool, bool)> {
    let mut out: Vec<(u16, bool, bool)> = entries
        .iter()
        .flat_map(|v| (v.first..=v.last).map(move |vid| (vid, v.pvid, v.untagged)))
        .collect();
    out.sort_unstable();
    out.dedup_by_key(|e| e.0);
    out
}

/// `(vid, pvid, untagged)` items, consecutive ones with the same flags joined into ranges.
fn ranges(items: &[(u16, bool, bool)]) -> Vec<VlanEntry> {
    let mut out: Vec<VlanEntry> = Vec::new();
    for &(vid, pvid, untagged) in items {
        match out.last_mut() {
            // A PVID is one VLAN; never part of a range.
            Some(last)
                if !pvid
                    && !last.pvid
                    && last.untagged == untagged
                    && u32::from(last.last) + 1 == u32::from(vid) =>
            {
                last.last = vid
            }
            _ => out.push(VlanEntry {
                first: vid,
                last: vid,
                pvid,
                untagged,
            }),
        }
    }
    out
}

/// The VLAN changes from `now` to `want` (VLANs to remove, VLANs to add or re-flag).
fn vlan_changes(now: &[VlanEntry], want: &[VlanEntry]) -> (Vec<VlanEntry>, Vec<VlanEntry>) {
    let (now, want) = (expand(now), expand(want));
    let del: Vec<_> = now
        .iter()
        .filter(|(vid, ..)| !want.iter().any(|w| w.0 == *vid))
        .copied()
        .collect();
    let add: Vec<_> = want.iter().filter(|w| !now.contains(w)).copied().collect();
    (ranges(&del), ranges(&add))
}

/// Plan qemu-ifup. Only differences from the kernel's state are planned.
pub fn up(a: &Attach) -> Result<Plan, PlanError> {
    let (tap, bridge, opts) = (&a.tap.link, &a.bridge, &a.options);
    let attached = tap.master == Some(bridge.index);

    let address = mac_change(tap, opts);
    let mtu = mtu_for(tap, opts, Some(bridge.mtu))?;

    let info = bridge.bridge.unwrap_or_default();
    if (opts.vlan.is_some() || !opts.tagged.is_empty()) && !info.vlan_filtering {
        return Err(PlanError::NeedsVlanFiltering);
    }
    // A port's state now: its own if it is already on this bridge, a new port's otherwise.
    let flags_now = match (attached, tap.port) {
        (true, Some(f)) => f,
        _ => PortFlags::NEW_PORT,
    };
    let flags_want = wanted_flags(opts);
    let mut port = flag_changes(flags_now, flags_want);
    let mut port_back = flag_changes(flags_want, flags_now);
    if info.vlan_filtering {
        let default_pvid = info.default_pvid.unwrap_or(0);
        let vlans_now = match (attached, &a.vlans) {
            (true, Some(v)) => v.clone(),
            _ => wanted_vlans(&PortOptions::default(), default_pvid),
        };
        let want = wanted_vlans(opts, default_pvid);
        (port.del_vlans, port.add_vlans) = vlan_changes(&vlans_now, &want);
        (port_back.del_vlans, port_back.add_vlans) = vlan_changes(&want, &vlans_now);
    }
    let has_port = !port.is_empty();

    let mut steps = Vec::new();
    // Joining with settings to apply: down first, in a message of its own (see `LinkChange`).
    let down_first = !attached && tap.up && has_port;
    if down_first {
        steps.push(Step::Link(LinkChange {
            up: Some(false),
            ..LinkChange::default()
        }));
    }
    let mut change = LinkChange {
        address,
        mtu,
        master: (!attached).then_some(bridge.index),
        ..LinkChange::default()
    };
    let up_last = has_port && (!tap.up || down_first);
    if !tap.up && !has_port {
        change.up = Some(true);
    }
    if !change.is_empty() {
        steps.push(Step::Link(change.clone()));
    }
    if has_port {
        steps.push(Step::Port(port));
    }
    if up_last {
        steps.push(Step::Link(LinkChange {
            up: Some(true),
            ..LinkChange::default()
        }));
    }

    // The undo: the port's settings back (when it was already a port of this bridge; leaving
    // the bridge clears them otherwise), then address, MTU, master and up/down as they were.
    let mut undo = Vec::new();
    if attached && !port_back.is_empty() {
        undo.push(Step::Port(port_back));
    }
    // Up or down as it was: the tap may have gone down, or come up, in a step of its own.
    let restore = LinkChange {
        up: (!steps.is_empty()).then_some(tap.up),
        ..restoring(tap, &change)
    };
    if !restore.is_empty() {
        undo.push(Step::Link(restore));
    }
    Ok(Plan { steps, undo })
}

/// The MTU `opts` asks for on `tap`, given what `mtu auto` means (`auto`: the bridge's MTU, or
/// `None` for a routed tap, which keeps its own). `None`: leave it.
fn mtu_for(tap: &Link, opts: &PortOptions, auto: Option<u32>) -> Result<Option<u32>, PlanError> {
    let (mtu, is_auto) = match (opts.mtu, auto) {
        (Mtu::Auto, Some(bridge)) => (bridge, true),
        (Mtu::Auto, None) => return Ok(None),
        (Mtu::Fixed(n), _) => (n, false),
    };
    if let Some(max) = tap.max_mtu.filter(|&max| mtu > max) {
        return Err(PlanError::MtuAboveMax {
            mtu,
            max,
            auto: is_auto,
        });
    }
    Ok((mtu != tap.mtu).then_some(mtu))
}

/// Plan qemu-ifup for a routed tap: host-side MAC, MTU (only a fixed one), proxy ARP, up, in one
/// message; then a route to each destination not routed to it yet. Root may have left it on a
/// bridge: it is detached (privileged mode refuses that case earlier). The undo removes the
/// routes added and puts the tap back.
pub fn routed(r: &Routed) -> Result<Plan, PlanError> {
    let (tap, opts) = (&r.tap.link, &r.options);
    let address = mac_change(tap, opts);
    let mtu = mtu_for(tap, opts, None)?;
    let proxy_arp = opts.proxy_arp.filter(|&want| tap.proxy_arp != Some(want));
    let change = LinkChange {
        address,
        mtu,
        up: (!tap.up).then_some(true),
        master: tap.master.map(|_| 0),
        proxy_arp,
    };
    let routes: Vec<RouteSpec> = r
        .prefixes
        .iter()
        .filter(|p| !r.present.contains(p))
        .map(|p| our_route(p.addr, p.len, tap.index))
        .collect();
    let mut steps = Vec::new();
    if !change.is_empty() {
        steps.push(Step::Link(change.clone()));
    }
    steps.extend(routes.iter().copied().map(Step::AddRoute));
    let mut undo: Vec<Step> = routes.iter().rev().copied().map(Step::DelRoute).collect();
    let restore = restoring(tap, &change);
    if !restore.is_empty() {
        undo.push(Step::Link(restore));
    }
    Ok(Plan { steps, undo })
}

/// Plan qemu-ifdown: remove the routes the helper added to the tap (`routes`: those through it
/// with [`ROUTE_PROTOCOL`]), detach it from its master (if any) and set it down (if up). Nothing to
/// undo: a failed step leaves the tap on its way down.
pub fn down(d: &Detach, routes: &[Route]) -> Plan {
    let tap = &d.tap.link;
    let mut steps: Vec<Step> = routes
        .iter()
        .map(|r| Step::DelRoute(our_route(r.dst, r.dst_len, tap.index)))
        .collect();
    let change = LinkChange {
        master: tap.master.map(|_| 0),
        up: tap.up.then_some(false),
        ..LinkChange::default()
    };
    if !change.is_empty() {
        steps.push(Step::Link(change));
    }
    Plan {
        steps,
        undo: vec![],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::decide::{Origin, Tap};
    use ifup_netlink::{BridgeInfo, TunInfo};
    use ifup_policy::{IfName, VlanRange};

    fn tap() -> Link {
        Link {
            index: 5,
            name: "vmtap0".into(),
            kind: Some("tun".into()),
            mtu: 1500,
            max_mtu: Some(65521),
            master: None,
            up: false,
            loopback: false,
            address: Some(vec![0x52, 0x54, 0, 1, 2, 3]),
            tun: Some(TunInfo {
                tap: true,
                owner: None,
                group: None,
                persist: false,
            }),
            bridge: None,
            port: None,
            proxy_arp: Some(false),
        }
    }

    fn bridge(mtu: u32, vlan_filtering: bool) -> Link {
        Link {
            index: 2,
            name: "br0".into(),
            kind: Some("bridge".into()),
            mtu,
            max_mtu: Some(65535),
            master: None,
            up: true,
            loopback: false,
            address: Some(vec![2, 0, 0, 0, 0, 1]),
            tun: None,
            bridge: Some(BridgeInfo {
                vlan_filtering,
                default_pvid: Some(1),
                ..BridgeInfo::default()
            }),
            port: None,
            proxy_arp: None,
        }
    }

    fn vlan_bridge(default_pvid: u16) -> Link {
        let mut b = bridge(1500, true);
        b.bridge = b.bridge.map(|i| BridgeInfo {
            default_pvid: Some(default_pvid),
            ..i
        });
        b
    }

    /// `t` attached to `b` (index 2), up, converged for the default options.
    fn on_bridge(mut t: Link, b: &Link) -> Link {
        t.master = Some(b.index);
        t.up = true;
        t.mtu = b.mtu;
        t.address = Some(vec![0xfe, 0x54, 0, 1, 2, 3]);
        t.port = Some(PortFlags::NEW_PORT);
        t
    }

    fn attach(t: Link, b: Link, options: PortOptions, vlans: Option<Vec<VlanEntry>>) -> Attach {
        Attach {
            tap: Tap {
                name: IfName::parse(&t.name).unwrap(),
                link: t,
            },
            bridge: b,
            options,
            origin: Origin::DefaultRoute,
            vlans,
        }
    }

    fn plan(t: Link, b: Link, o: PortOptions) -> Plan {
        up(&attach(t, b, o, None)).unwrap()
    }

    fn link(c: LinkChange) -> Step {
        Step::Link(c)
    }

    fn vids(entries: &[VlanEntry]) -> Vec<(u16, u16, bool, bool)> {
        entries
            .iter()
            .map(|v| (v.first, v.last, v.pvid, v.untagged))
            .collect()
    }

    #[test]
    fn fresh_tap_one_message() {
        let p = plan(tap(), bridge(1400, false), PortOptions::default());
        assert_eq!(
            p.steps,
            [link(LinkChange {
                address: Some([0xfe, 0x54, 0, 1, 2, 3]),
                mtu: Some(1400),
                up: Some(true),
                master: Some(2),
                proxy_arp: None,
            })]
        );
        // The undo puts back what was there: detached, old MTU and address, down.
        assert_eq!(
            p.undo,
            [link(LinkChange {
                address: Some([0x52, 0x54, 0, 1, 2, 3]),
                mtu: Some(1500),
                up: Some(false),
                master: Some(0),
                proxy_arp: None,
            })]
        );
    }

    #[test]
    fn converged_tap_plans_nothing() {
        let b = bridge(1400, false);
        let p = plan(on_bridge(tap(), &b), b, PortOptions::default());
        assert!(p.is_empty() && p.undo.is_empty(), "{p:?}");
        // With flags that are already in place, too.
        let b = bridge(1400, false);
        let mut t = on_bridge(tap(), &b);
        t.port = Some(PortFlags {
            isolated: true,
            ..PortFlags::NEW_PORT
        });
        let opts = PortOptions {
            isolated: Some(true),
            ..PortOptions::default()
        };
        assert!(plan(t, b, opts).is_empty());
    }

    #[test]
    fn rerun_converges_flags_and_mtu_both_ways() {
        // The rule gained `isolated on mtu 1300`: both change, live, on the attached tap.
        let b = bridge(1400, false);
        let t = on_bridge(tap(), &b);
        let opts = PortOptions {
            isolated: Some(true),
            mtu: Mtu::Fixed(1300),
            ..PortOptions::default()
        };
        let p = plan(t, b, opts);
        assert_eq!(
            p.steps,
            [
                link(LinkChange {
                    mtu: Some(1300),
                    ..LinkChange::default()
                }),
                Step::Port(BridgePort {
                    isolated: Some(true),
                    ..BridgePort::default()
                })
            ]
        );
        assert_eq!(
            p.undo,
            [
                Step::Port(BridgePort {
                    isolated: Some(false),
                    ..BridgePort::default()
                }),
                link(LinkChange {
                    mtu: Some(1400),
                    up: Some(true),
                    ..LinkChange::default()
                })
            ]
        );
        // Attached with `hairpin on learning off flood off`, now a plain rule: back to the
        // kernel's new-port flags.
        let b = bridge(1400, false);
        let mut t = on_bridge(tap(), &b);
        t.port = Some(PortFlags {
            isolated: false,
            hairpin: true,
            learning: false,
            flood: false,
        });
        let p = plan(t, b, PortOptions::default());
        assert_eq!(
            p.steps,
            [Step::Port(BridgePort {
                hairpin: Some(false),
                learning: Some(true),
                flood: Some(true),
                ..BridgePort::default()
            })]
        );
    }

    #[test]
    fn mtu_above_the_taps_maximum_is_refused_before_anything() {
        let b = bridge(1500, false);
        let t = on_bridge(tap(), &b);
        let opts = PortOptions {
            mtu: Mtu::Fixed(65535),
            ..PortOptions::default()
        };
        let e = up(&attach(t, b.clone(), opts, None)).unwrap_err();
        assert_eq!(
            e,
            PlanError::MtuAboveMax {
                mtu: 65535,
                max: 65521,
                auto: false
            }
        );
        assert!(e.reason(&b, "rule x").contains("at most 65521"));
        // The bridge's own MTU above it (mtu auto).
        let b = bridge(65535, false);
        let e = up(&attach(tap(), b.clone(), PortOptions::default(), None)).unwrap_err();
        assert!(e.reason(&b, "rule x").contains("set `mtu 65521`"), "{e:?}");
        // The maximum itself is fine; a kernel that does not report one is not checked.
        let mut t = tap();
        t.max_mtu = None;
        let opts = PortOptions {
            mtu: Mtu::Fixed(65535),
            ..PortOptions::default()
        };
        assert!(up(&attach(t, bridge(1500, false), opts, None)).is_ok());
    }

    #[test]
    fn high_first_byte_is_left_alone() {
        // libvirt's taps: fe… for most guests, fa… when the guest's MAC starts with fe.
        assert_eq!(host_side_mac(&[0xfe, 0x54, 0, 1, 2, 3]), None);
        assert_eq!(host_side_mac(&[0xfa, 0x54, 0, 1, 2, 3]), None);
        assert_eq!(host_side_mac(&[0xf0, 0, 0, 0, 0, 0]), None);
        assert_eq!(
            host_side_mac(&[0xef, 1, 2, 3, 4, 5]),
            Some([0xfe, 1, 2, 3, 4, 5])
        );
        assert_eq!(
            host_side_mac(&[0x52, 0x54, 0, 1, 2, 3]),
            Some([0xfe, 0x54, 0, 1, 2, 3])
        );
        assert_eq!(host_side_mac(&[1, 2, 3]), None);
        // Whatever the guest's MAC, the rule never makes the tap's MAC equal to it when libvirt
        // derived the tap's from the guest's.
        for first in 0..=255u8 {
            let guest = [first, 0x54, 0, 0xab, 0xcd, 0xef];
            let mut libvirt_tap = guest;
            libvirt_tap[0] = if first == 0xfe { 0xfa } else { 0xfe };
            let ours = host_side_mac(&libvirt_tap).unwrap_or(libvirt_tap);
            assert_ne!(ours, guest, "guest {first:02x}");
        }
    }

    #[test]
    fn fixed_mtu_and_keep_mac() {
        let opts = PortOptions {
            mtu: Mtu::Fixed(9000),
            tap_mac: TapMac::Keep,
            ..PortOptions::default()
        };
        let p = plan(tap(), bridge(9000, false), opts);
        let Step::Link(c) = &p.steps[0] else {
            panic!("{p:?}")
        };
        assert_eq!((c.mtu, c.address), (Some(9000), None));
    }

    #[test]
    fn port_options_join_down_and_come_up_last() {
        let opts = PortOptions {
            vlan: Some(20),
            tagged: vec![VlanRange {
                first: 30,
                last: 39,
            }],
            isolated: Some(true),
            ..PortOptions::default()
        };
        let p = plan(tap(), bridge(1500, true), opts.clone());
        assert_eq!(p.steps.len(), 3, "{p:?}");
        let Step::Link(attach) = &p.steps[0] else {
            panic!()
        };
        assert_eq!((attach.master, attach.up), (Some(2), None));
        let Step::Port(port) = &p.steps[1] else {
            panic!()
        };
        assert_eq!(port.isolated, Some(true));
        assert_eq!(vids(&port.del_vlans), [(1, 1, true, true)]);
        assert_eq!(
            vids(&port.add_vlans),
            [(20, 20, true, true), (30, 39, false, false)]
        );
        assert_eq!(
            p.steps[2],
            link(LinkChange {
                up: Some(true),
                ..LinkChange::default()
            })
        );
        // A tap that is already up (libvirt brings it up first) is set down in a message of
        // its own before it joins.
        let mut t = tap();
        t.up = true;
        let p = plan(t, bridge(1500, true), opts);
        assert_eq!(
            p.steps[0],
            link(LinkChange {
                up: Some(false),
                ..LinkChange::default()
            })
        );
        let Step::Link(attach) = &p.steps[1] else {
            panic!()
        };
        assert_eq!((attach.master, attach.up), (Some(2), None));
        assert_eq!(p.steps.len(), 4);
        // Undo: detached and up again, as before.
        assert_eq!(
            p.undo.last(),
            Some(&link(LinkChange {
                address: Some([0x52, 0x54, 0, 1, 2, 3]),
                master: Some(0),
                up: Some(true),
                ..LinkChange::default()
            }))
        );
    }

    #[test]
    fn vlan_needs_filtering() {
        let opts = PortOptions {
            vlan: Some(20),
            ..PortOptions::default()
        };
        assert_eq!(
            up(&attach(tap(), bridge(1500, false), opts, None)),
            Err(PlanError::NeedsVlanFiltering)
        );
    }

    #[test]
    fn access_vlan_replaces_the_bridges_default_pvid() {
        let access = |vlan: u16, tagged: Vec<VlanRange>| PortOptions {
            vlan: Some(vlan),
            tagged,
            ..PortOptions::default()
        };
        let r = |first, last| VlanRange { first, last };
        let port = |p: &Plan| -> BridgePort {
            p.steps
                .iter()
                .find_map(|s| match s {
                    Step::Port(p) => Some(p.clone()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        let p = plan(tap(), vlan_bridge(1), access(20, vec![]));
        assert_eq!(vids(&port(&p).del_vlans), [(1, 1, true, true)]);
        assert_eq!(vids(&port(&p).add_vlans), [(20, 20, true, true)]);
        // A bridge whose default VLAN is 5: 5 goes, not 1.
        let p = plan(tap(), vlan_bridge(5), access(20, vec![]));
        assert_eq!(vids(&port(&p).del_vlans), [(5, 5, true, true)]);
        // No default VLAN (default_pvid 0): nothing to remove.
        let p = plan(tap(), vlan_bridge(0), access(20, vec![]));
        assert!(port(&p).del_vlans.is_empty());
        // The access VLAN is the default one: already in place.
        let p = plan(tap(), vlan_bridge(20), access(20, vec![]));
        assert!(port(&p).is_empty(), "{p:?}");
        // The default VLAN is also wanted tagged: re-flagged, not removed.
        let p = plan(tap(), vlan_bridge(1), access(20, vec![r(1, 1), r(30, 39)]));
        assert!(port(&p).del_vlans.is_empty());
        assert_eq!(
            vids(&port(&p).add_vlans),
            [
                (1, 1, false, false),
                (20, 20, true, true),
                (30, 39, false, false)
            ]
        );
    }

    #[test]
    fn trunk_keeps_the_native_vlan() {
        let opts = PortOptions {
            tagged: vec![VlanRange {
                first: 10,
                last: 10,
            }],
            ..PortOptions::default()
        };
        let p = plan(tap(), vlan_bridge(1), opts);
        let Step::Port(port) = &p.steps[1] else {
            panic!("{p:?}")
        };
        assert!(port.del_vlans.is_empty());
        assert_eq!(vids(&port.add_vlans), [(10, 10, false, false)]);
    }

    #[test]
    fn rerun_converges_vlans_both_ways() {
        let b = vlan_bridge(1);
        let t = on_bridge(tap(), &b);
        let access20 = VlanEntry {
            first: 20,
            last: 20,
            pvid: true,
            untagged: true,
        };
        // Was `vlan 20 tagged 30-39`, now a plain rule: 20 and 30-39 go, 1 comes back.
        let now = vec![
            access20,
            VlanEntry {
                first: 30,
                last: 39,
                pvid: false,
                untagged: false,
            },
        ];
        let p = up(&attach(
            t.clone(),
            b.clone(),
            PortOptions::default(),
            Some(now.clone()),
        ))
        .unwrap();
        let Step::Port(port) = &p.steps[0] else {
            panic!("{p:?}")
        };
        assert_eq!(
            vids(&port.del_vlans),
            [(20, 20, true, true), (30, 39, false, false)]
        );
        assert_eq!(vids(&port.add_vlans), [(1, 1, true, true)]);
        // And its undo restores exactly the old set.
        let Step::Port(back) = &p.undo[0] else {
            panic!("{p:?}")
        };
        assert_eq!(vids(&back.del_vlans), [(1, 1, true, true)]);
        assert_eq!(
            vids(&back.add_vlans),
            [(20, 20, true, true), (30, 39, false, false)]
        );
        // Already converged: nothing.
        let opts = PortOptions {
            vlan: Some(20),
            tagged: vec![VlanRange {
                first: 30,
                last: 39,
            }],
            ..PortOptions::default()
        };
        assert!(up(&attach(t, b, opts, Some(now))).unwrap().is_empty());
    }

    #[test]
    fn describe_lists_every_change() {
        let opts = PortOptions {
            mtu: Mtu::Fixed(1400),
            vlan: Some(20),
            tagged: vec![
                VlanRange {
                    first: 10,
                    last: 10,
                },
                VlanRange {
                    first: 30,
                    last: 39,
                },
            ],
            isolated: Some(true),
            hairpin: Some(false),
            learning: Some(false),
            flood: Some(true),
            tap_mac: TapMac::Fe,
            proxy_arp: None,
        };
        let lines = plan(tap(), vlan_bridge(1), opts).describe("br0");
        assert_eq!(
            lines,
            [
                "set address fe:54:00:01:02:03",
                "set mtu 1400",
                "attach to bridge br0",
                "set bridge-port isolated on",
                "set bridge-port learning off",
                "remove vlan 1",
                "add vlan 10 tagged",
                "add vlan 20 pvid untagged",
                "add vlan 30-39 tagged",
                "set up",
            ]
        );
    }

    #[test]
    fn down_plan() {
        let d = |t: Link| Detach {
            tap: Tap {
                name: IfName::parse("vmtap0").unwrap(),
                link: t,
            },
            master: None,
        };
        assert!(down(&d(tap()), &[]).is_empty());
        let b = bridge(1500, false);
        let p = down(&d(on_bridge(tap(), &b)), &[]);
        assert_eq!(
            p.steps,
            [link(LinkChange {
                master: Some(0),
                up: Some(false),
                ..LinkChange::default()
            })]
        );
        assert_eq!(p.describe("br0"), ["detach from br0", "set down"]);
    }
}
