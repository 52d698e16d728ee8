//! From kernel state and policy to the exact netlink changes: pure, so it is unit-tested
//! without root.

use ifup_netlink::{BridgePort, Link, LinkChange, VlanEntry};
use ifup_policy::{Mtu, PortOptions, TapMac};

/// What qemu-ifup will do, in order: `attach` (address, MTU, master; also up when there are no
/// port options), then `port`, then `up`.
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

    /// The change that puts the tap back as it was found: detached (or back on its old master),
    /// old MTU and address, down if it was down.
    pub fn undo(&self, tap: &Link) -> LinkChange {
        LinkChange {
            address: self
                .attach
                .address
                .and(tap.address.as_deref().and_then(|a| a.try_into().ok())),
            mtu: self.attach.mtu.map(|_| tap.mtu),
            up: (!tap.up).then_some(false),
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
            out.push(format!("remove vlan {}", fmt_vlan(v)));
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

fn fmt_vlan(v: &VlanEntry) -> String {
    let mut s = if v.first == v.last {
        v.first.to_string()
    } else {
        format!("{}-{}", v.first, v.last)
    };
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
    NeedsVlanFiltering,
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
    let port = port_settings(opts);
    if (opts.vlan.is_some() || !opts.tagged.is_empty())
        && !bridge.bridge.is_some_and(|b| b.vlan_filtering)
    {
        return Err(PlanError::NeedsVlanFiltering);
    }
    let has_port = !port.is_empty();
    if !tap.up && !has_port {
        attach.up = Some(true);
    }
    Ok(UpPlan {
        attach,
        // Port settings are re-applied only when (re)attaching or when the tap is still down
        // (a previous run failed half-way); an attached, running tap is left alone.
        port: if !attached || !tap.up {
            port
        } else {
            BridgePort::default()
        },
        up_last: has_port && !tap.up,
    })
}

/// The bridge-port settings for `opts`. `vlan N` makes N the untagged PVID and removes the
/// default VLAN 1 (unless N is 1 or VLAN 1 is also tagged); `tagged` adds tagged VLANs.
fn port_settings(opts: &PortOptions) -> BridgePort {
    let mut port = BridgePort {
        isolated: opts.isolated,
        hairpin: opts.hairpin,
        learning: opts.learning,
        flood: opts.flood,
        ..BridgePort::default()
    };
    if let Some(vid) = opts.vlan {
        if vid != 1 && !opts.is_tagged(1) {
            port.del_vlans.push(VlanEntry {
                first: 1,
                last: 1,
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
                ..BridgeInfo::default()
            }),
        }
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
    fn undo_restores() {
        let t = tap();
        let p = plan_up(&t, &bridge(1400, false), &PortOptions::default()).unwrap();
        let u = p.undo(&t);
        assert_eq!(u.master, Some(0));
        assert_eq!(u.mtu, Some(1500));
        assert_eq!(u.up, Some(false));
        assert_eq!(u.address, Some([0x52, 0x54, 0, 1, 2, 3]));
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
