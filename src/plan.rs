//! From kernel state and policy to the exact netlink changes: pure, so it is unit-tested
//! without root.

use ifup_netlink::{BridgePort, Link, LinkChange, VlanEntry};
use ifup_policy::{Mtu, PortOptions, TapMac};

/// What qemu-ifup will do, in order: `attach` (address, MTU, master; also up when there are no
/// port options, or down when an already-up tap gets port options), then `port`, then `up`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpPlan {
    pub attach: LinkChange,
    pub port: BridgePort,
    /// Bring the tap up as the last, separate step (only when there are port options, so the
    /// port never forwards a frame before its VLANs and flags are in place).
    pub up_last: bool,
}

impl UpPlan {
    pub fn is_empty(&self) -> bool {
        self.attach.is_empty() && self.port.is_empty() && !self.up_last
    }

    /// The change that undoes a failed attempt: the tap detached (or back on the master it had),
    /// its old MTU and address, and down — a tap whose attach failed must not pass traffic.
    pub fn undo(&self, tap: &Link) -> LinkChange {
        LinkChange {
            address: self
                .attach
                .address
                .and(tap.address.as_deref().and_then(|a| a.try_into().ok())),
            mtu: self.attach.mtu.map(|_| tap.mtu),
            up: Some(false),
            master: Some(tap.master.unwrap_or(0)),
        }
    }

    /// One line per change, for --dry-run.
    pub fn describe(&self, bridge: &Link) -> Vec<String> {
        let mut out = Vec::new();
        let a = &self.attach;
        if let Some(mac) = a.address {
            out.push(format!("set address {}", fmt_mac(&mac)));
        }
        if let Some(mtu) = a.mtu {
            out.push(format!("set mtu {mtu}"));
        }
        if a.master.is_some() {
            out.push(format!("attach to bridge {}", bridge.name));
        }
        if a.up == Some(false) {
            out.push("set down until the bridge-port options are in place".into());
        }
        let p = &self.port;
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
        if a.up == Some(true) || self.up_last {
            out.push("set up".into());
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
        }
    }
}

/// Plan qemu-ifup for `tap` onto `bridge` with `opts`. Only differences from the current state
/// are planned, so a second run on an attached tap plans nothing.
pub fn plan_up(tap: &Link, bridge: &Link, opts: &PortOptions) -> Result<UpPlan, PlanError> {
    let attached = tap.master == Some(bridge.index);
    let mut attach = LinkChange::default();
    if opts.tap_mac == TapMac::Fe {
        if let Some(mac) = tap
            .address
            .as_deref()
            .and_then(|a| <[u8; 6]>::try_from(a).ok())
        {
            if mac[0] != 0xfe {
                let mut new = mac;
                new[0] = 0xfe;
                attach.address = Some(new);
            }
        }
    }
    let mtu = match opts.mtu {
        Mtu::Auto => bridge.mtu,
        Mtu::Fixed(n) => n,
    };
    if mtu != tap.mtu {
        attach.mtu = Some(mtu);
    }
    if !attached {
        attach.master = Some(bridge.index);
    }
    let info = bridge.bridge.unwrap_or_default();
    if (opts.vlan.is_some() || !opts.tagged.is_empty()) && !info.vlan_filtering {
        return Err(PlanError::NeedsVlanFiltering);
    }
    let port = port_settings(opts, info.default_pvid.unwrap_or(0));
    let has_port = !port.is_empty();
    // Port settings are applied when (re)attaching or when the tap is still down (a previous
    // run failed half-way, or someone set it down); an attached, running tap is left alone.
    let apply_port = has_port && (!attached || !tap.up);
    if !tap.up && !has_port {
        attach.up = Some(true);
    }
    if tap.up && apply_port {
        // The port must not forward with the bridge's defaults (default VLAN, not isolated)
        // until its own settings are in. The kernel applies IFF_UP after the master within one
        // message, so an up tap is set down in the attach message itself (only that in-kernel
        // instant remains), gets its settings, and comes up last.
        attach.up = Some(false);
    }
    Ok(UpPlan {
        attach,
        port: if apply_port {
            port
        } else {
            BridgePort::default()
        },
        up_last: apply_port,
    })
}

/// The bridge-port settings for `opts` on a bridge whose new ports get VLAN `default_pvid`
/// (0: none). `vlan N` makes N the untagged PVID and removes the default VLAN from the port
/// (unless it is N or also tagged); `tagged` adds tagged VLANs.
fn port_settings(opts: &PortOptions, default_pvid: u16) -> BridgePort {
    let mut port = BridgePort {
        isolated: opts.isolated,
        hairpin: opts.hairpin,
        learning: opts.learning,
        flood: opts.flood,
        ..BridgePort::default()
    };
    if let Some(vid) = opts.vlan {
        if default_pvid != 0 && vid != default_pvid && !opts.is_tagged(default_pvid) {
            port.del_vlans.push(VlanEntry {
                first: default_pvid,
                last: default_pvid,
                pvid: false,
                untagged: false,
            });
        }
        port.add_vlans.push(VlanEntry {
            first: vid,
            last: vid,
            pvid: true,
            untagged: true,
        });
    }
    for r in &opts.tagged {
        port.add_vlans.push(VlanEntry {
            first: r.first,
            last: r.last,
            pvid: false,
            untagged: false,
        });
    }
    port
}

/// Plan qemu-ifdown: detach from the master (if any) and set down (if up).
pub fn plan_down(tap: &Link) -> LinkChange {
    LinkChange {
        master: tap.master.map(|_| 0),
        up: tap.up.then_some(false),
        ..LinkChange::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ifup_netlink::{BridgeInfo, TunInfo};
    use ifup_policy::VlanRange;

    fn tap() -> Link {
        Link {
            index: 5,
            name: "vmtap0".into(),
            kind: Some("tun".into()),
            mtu: 1500,
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
        }
    }

    fn bridge(mtu: u32, vlan_filtering: bool) -> Link {
        Link {
            index: 2,
            name: "br0".into(),
            kind: Some("bridge".into()),
            mtu,
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

    fn vids(entries: &[VlanEntry]) -> Vec<(u16, u16, bool, bool)> {
        entries
            .iter()
            .map(|v| (v.first, v.last, v.pvid, v.untagged))
            .collect()
    }

    #[test]
    fn fresh_tap_one_message() {
        let p = plan_up(&tap(), &bridge(1400, false), &PortOptions::default()).unwrap();
        assert_eq!(
            p.attach,
            LinkChange {
                address: Some([0xfe, 0x54, 0, 1, 2, 3]),
                mtu: Some(1400),
                up: Some(true),
                master: Some(2)
            }
        );
        assert!(p.port.is_empty() && !p.up_last);
    }

    #[test]
    fn attached_tap_plans_nothing() {
        let mut t = tap();
        t.master = Some(2);
        t.up = true;
        t.mtu = 1400;
        t.address = Some(vec![0xfe, 0x54, 0, 1, 2, 3]);
        let opts = PortOptions {
            isolated: Some(true),
            ..PortOptions::default()
        };
        assert!(plan_up(&t, &bridge(1400, false), &opts).unwrap().is_empty());
    }

    #[test]
    fn fixed_mtu_and_keep_mac() {
        let opts = PortOptions {
            mtu: Mtu::Fixed(9000),
            tap_mac: TapMac::Keep,
            ..PortOptions::default()
        };
        let p = plan_up(&tap(), &bridge(9000, false), &opts).unwrap();
        assert_eq!(p.attach.mtu, Some(9000));
        assert_eq!(p.attach.address, None);
    }

    #[test]
    fn port_options_bring_up_last() {
        let opts = PortOptions {
            vlan: Some(20),
            tagged: vec![VlanRange {
                first: 30,
                last: 39,
            }],
            isolated: Some(true),
            ..PortOptions::default()
        };
        let p = plan_up(&tap(), &bridge(1500, true), &opts).unwrap();
        assert_eq!(p.attach.up, None);
        assert!(p.up_last);
        assert_eq!(p.port.isolated, Some(true));
        assert_eq!(p.port.del_vlans.len(), 1);
        assert_eq!(p.port.add_vlans.len(), 2);
        assert!(p.port.add_vlans[0].pvid && p.port.add_vlans[0].untagged);
        assert_eq!(
            (p.port.add_vlans[1].first, p.port.add_vlans[1].last),
            (30, 39)
        );
    }

    #[test]
    fn vlan_needs_filtering() {
        let opts = PortOptions {
            vlan: Some(20),
            ..PortOptions::default()
        };
        assert_eq!(
            plan_up(&tap(), &bridge(1500, false), &opts),
            Err(PlanError::NeedsVlanFiltering)
        );
    }

    #[test]
    fn access_vlan_removes_the_bridges_default_pvid() {
        let access = |vlan: u16, tagged: Vec<VlanRange>| PortOptions {
            vlan: Some(vlan),
            tagged,
            ..PortOptions::default()
        };
        let r = |first, last| VlanRange { first, last };
        // The usual default VLAN 1 goes; the access VLAN becomes the untagged PVID.
        let p = plan_up(&tap(), &vlan_bridge(1), &access(20, vec![])).unwrap();
        assert_eq!(vids(&p.port.del_vlans), [(1, 1, false, false)]);
        assert_eq!(vids(&p.port.add_vlans), [(20, 20, true, true)]);
        // A bridge whose default VLAN is 5: 5 goes, not 1.
        let p = plan_up(&tap(), &vlan_bridge(5), &access(20, vec![])).unwrap();
        assert_eq!(vids(&p.port.del_vlans), [(5, 5, false, false)]);
        // No default VLAN (default_pvid 0): nothing to remove.
        let p = plan_up(&tap(), &vlan_bridge(0), &access(20, vec![])).unwrap();
        assert!(p.port.del_vlans.is_empty());
        // The access VLAN is the default one: kept.
        let p = plan_up(&tap(), &vlan_bridge(20), &access(20, vec![])).unwrap();
        assert!(p.port.del_vlans.is_empty());
        // The default VLAN is also wanted tagged: re-added tagged (which clears its PVID and
        // untagged flags), not removed.
        let p = plan_up(
            &tap(),
            &vlan_bridge(1),
            &access(20, vec![r(1, 1), r(30, 39)]),
        )
        .unwrap();
        assert!(p.port.del_vlans.is_empty());
        assert_eq!(
            vids(&p.port.add_vlans),
            [
                (20, 20, true, true),
                (1, 1, false, false),
                (30, 39, false, false)
            ]
        );
    }

    #[test]
    fn trunk_keeps_the_native_vlan() {
        let opts = PortOptions {
            tagged: vec![
                VlanRange {
                    first: 10,
                    last: 10,
                },
                VlanRange {
                    first: 20,
                    last: 29,
                },
            ],
            ..PortOptions::default()
        };
        let p = plan_up(&tap(), &vlan_bridge(1), &opts).unwrap();
        assert!(p.port.del_vlans.is_empty());
        assert_eq!(
            vids(&p.port.add_vlans),
            [(10, 10, false, false), (20, 29, false, false)]
        );
    }

    #[test]
    fn vlan_reason_names_the_fix_or_the_missing_kernel_feature() {
        let e = PlanError::NeedsVlanFiltering;
        let r = e.reason(&bridge(1500, false), "bridge line at x:1");
        assert!(
            r.contains("ip link set br0 type bridge vlan_filtering 1"),
            "{r}"
        );
        assert!(r.contains("bridge line at x:1"), "{r}");
        // A kernel without CONFIG_BRIDGE_VLAN_FILTERING reports no default_pvid.
        let mut b = bridge(1500, false);
        b.bridge = Some(BridgeInfo::default());
        let r = e.reason(&b, "bridge line at x:1");
        assert!(r.contains("CONFIG_BRIDGE_VLAN_FILTERING"), "{r}");
        assert!(!r.contains("ip link set"), "{r}");
    }

    #[test]
    fn up_tap_joins_down_when_it_gets_port_options() {
        let mut t = tap();
        t.up = true;
        let opts = PortOptions {
            isolated: Some(true),
            ..PortOptions::default()
        };
        let p = plan_up(&t, &bridge(1500, false), &opts).unwrap();
        assert_eq!(p.attach.master, Some(2));
        assert_eq!(p.attach.up, Some(false));
        assert!(p.up_last);
        // Without port options it joins as it is.
        let p = plan_up(&t, &bridge(1500, false), &PortOptions::default()).unwrap();
        assert_eq!(p.attach.up, None);
        assert!(!p.up_last);
    }

    #[test]
    fn attached_but_down_tap_gets_its_port_options_again() {
        let mut t = tap();
        t.master = Some(2);
        let opts = PortOptions {
            hairpin: Some(true),
            ..PortOptions::default()
        };
        let p = plan_up(&t, &bridge(1500, false), &opts).unwrap();
        assert_eq!(p.attach.master, None);
        assert_eq!(p.port.hairpin, Some(true));
        assert!(p.up_last);
    }

    #[test]
    fn describe_lists_every_option() {
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
        };
        let b = vlan_bridge(1);
        let lines = plan_up(&tap(), &b, &opts).unwrap().describe(&b);
        assert_eq!(
            lines,
            [
                "set address fe:54:00:01:02:03",
                "set mtu 1400",
                "attach to bridge br0",
                "set bridge-port isolated on",
                "set bridge-port hairpin off",
                "set bridge-port learning off",
                "set bridge-port flood on",
                "remove vlan 1",
                "add vlan 20 pvid untagged",
                "add vlan 10 tagged",
                "add vlan 30-39 tagged",
                "set up",
            ]
        );
    }

    #[test]
    fn undo_restores() {
        let t = tap();
        let p = plan_up(&t, &bridge(1400, false), &PortOptions::default()).unwrap();
        let u = p.undo(&t);
        assert_eq!(u.master, Some(0));
        assert_eq!(u.mtu, Some(1500));
        assert_eq!(u.up, Some(false));
        assert_eq!(u.address, Some([0x52, 0x54, 0, 1, 2, 3]));
        // A tap that was up before still ends down: a failed attach passes no traffic.
        let mut t = tap();
        t.up = true;
        t.master = Some(7);
        let u = p.undo(&t);
        assert_eq!((u.master, u.up), (Some(7), Some(false)));
    }

    #[test]
    fn down_plan() {
        let mut t = tap();
        assert!(plan_down(&t).is_empty());
        t.master = Some(2);
        t.up = true;
        assert_eq!(
            plan_down(&t),
            LinkChange {
                master: Some(0),
                up: Some(false),
                ..LinkChange::default()
            }
        );
    }
}
