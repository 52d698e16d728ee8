//! Link operations: look a link up (by name or index, never by dumping them all), change it,
//! set its bridge-port attributes.

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Iff, Ifla, RtAddrFamily, Rtm};
use neli::rtnl::{Ifinfomsg, IfinfomsgBuilder, Rtattr, RtattrBuilder};
use neli::types::{Buffer, RtBuffer};

use crate::consts::{self, NLA_F_NESTED, NLA_TYPE_MASK};
use crate::error::{libc_errno, NetlinkError, Op};
use crate::socket::{c_string, Socket};

/// What the kernel says about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND` (`tun`, `bridge`, `veth`, …); `None` for links without one (`lo`, NICs).
    pub kind: Option<String>,
    pub mtu: u32,
    /// ifindex of the master device (the bridge), if any.
    pub master: Option<u32>,
    /// `IFF_UP` is set.
    pub up: bool,
    /// `IFF_LOOPBACK` is set.
    pub loopback: bool,
    /// Hardware address, if the link has one.
    pub address: Option<Vec<u8>>,
    /// For links of kind `tun`.
    pub tun: Option<TunInfo>,
    /// For links of kind `bridge`.
    pub bridge: Option<BridgeInfo>,
}

/// `IFLA_TUN_*` of a tun/tap link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunInfo {
    /// True for a tap (`IFF_TAP`), false for a tun.
    pub tap: bool,
    pub owner: Option<u32>,
    pub group: Option<u32>,
    pub persist: bool,
}

/// `IFLA_BR_*` of a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BridgeInfo {
    pub vlan_filtering: bool,
    /// STP enabled (`stp_state` != 0).
    pub stp: bool,
    /// Forward delay in hundredths of a second (clock_t units, as the kernel reports it).
    pub forward_delay: u32,
    /// The VLAN a new port gets as its untagged PVID (`default_pvid`; 0 = none). `None` when the
    /// kernel does not report it: it was built without `CONFIG_BRIDGE_VLAN_FILTERING`.
    pub default_pvid: Option<u16>,
    /// The bridge's own `nf_call_iptables` option (effective only with `br_netfilter` loaded).
    pub nf_call_iptables: bool,
}

impl BridgeInfo {
    /// Whether the kernel supports VLAN filtering on bridges at all.
    pub fn kernel_has_vlan_filtering(&self) -> bool {
        self.default_pvid.is_some()
    }
}

impl Link {
    /// True for a tap: kind `tun` with tun type tap.
    pub fn is_tap(&self) -> bool {
        self.kind.as_deref() == Some("tun") && self.tun.is_some_and(|t| t.tap)
    }

    pub fn is_bridge(&self) -> bool {
        self.kind.as_deref() == Some("bridge")
    }

    /// A short description for messages: "a veth", "a tun (not a tap)", "the loopback device".
    pub fn describe(&self) -> String {
        if self.loopback {
            return "the loopback device".into();
        }
        match (self.kind.as_deref(), self.tun) {
            (Some("tun"), Some(t)) if !t.tap => "a tun device (not a tap)".into(),
            (Some(kind), _) => format!("a {kind} device"),
            (None, _) => "a device with no link kind (a physical NIC?)".into(),
        }
    }
}

/// The changes one `RTM_SETLINK` makes. The kernel applies them in this order: address, MTU,
/// up/down, master. Fields left `None` are not touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkChange {
    pub address: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub up: Option<bool>,
    /// `Some(0)` detaches from the current master.
    pub master: Option<u32>,
}

impl LinkChange {
    pub fn is_empty(&self) -> bool {
        *self == LinkChange::default()
    }
}

/// One bridge VLAN entry (a single VLAN or an inclusive range) on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanEntry {
    pub first: u16,
    pub last: u16,
    pub pvid: bool,
    pub untagged: bool,
}

/// Bridge-port settings sent in one `AF_BRIDGE` `RTM_SETLINK`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgePort {
    pub isolated: Option<bool>,
    pub hairpin: Option<bool>,
    pub learning: Option<bool>,
    pub flood: Option<bool>,
    /// VLANs to add to the port.
    pub add_vlans: Vec<VlanEntry>,
    /// VLANs to remove from the port (sent in a separate `RTM_DELLINK`, before the adds).
    pub del_vlans: Vec<VlanEntry>,
}

impl BridgePort {
    fn has_flags(&self) -> bool {
        self.isolated.is_some()
            || self.hairpin.is_some()
            || self.learning.is_some()
            || self.flood.is_some()
    }

    pub fn is_empty(&self) -> bool {
        !self.has_flags() && self.add_vlans.is_empty() && self.del_vlans.is_empty()
    }
}

fn attr<P: neli::Size + neli::ToBytes>(
    op: Op,
    ty: u16,
    payload: P,
) -> Result<Rtattr<Ifla, Buffer>, NetlinkError> {
    RtattrBuilder::default()
        .rta_type(Ifla::from(ty))
        .rta_payload(payload)
        .build()
        .map_err(|e| NetlinkError::encode(op, e))
}

/// A nested attribute built from raw (type, payload) children.
fn nested(
    op: Op,
    ty: u16,
    children: &[(u16, Vec<u8>)],
) -> Result<Rtattr<Ifla, Buffer>, NetlinkError> {
    let mut body = Vec::new();
    for (cty, payload) in children {
        let len = 4 + payload.len();
        body.extend_from_slice(&(len as u16).to_ne_bytes());
        body.extend_from_slice(&cty.to_ne_bytes());
        body.extend_from_slice(payload);
        body.resize((body.len() + 3) & !3, 0);
    }
    attr(op, ty | NLA_F_NESTED, Buffer::from(body))
}

fn name_payload(name: &str) -> Buffer {
    let mut b = Vec::with_capacity(name.len() + 1);
    b.extend_from_slice(name.as_bytes());
    b.push(0);
    Buffer::from(b)
}

impl Socket {
    /// `RTM_GETLINK` by name. `Ok(None)` when no such link exists.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        self.get_link(0, Some(name))
    }

    /// `RTM_GETLINK` by ifindex. `Ok(None)` when no such link exists.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, NetlinkError> {
        self.get_link(index, None)
    }

    fn get_link(&mut self, index: u32, name: Option<&str>) -> Result<Option<Link>, NetlinkError> {
        let op = Op::GetLink;
        let index = i32::try_from(index)
            .map_err(|_| NetlinkError::malformed(op, "ifindex out of range"))?;
        let mut attrs = RtBuffer::new();
        if let Some(name) = name {
            attrs.push(attr(op, u16::from(Ifla::Ifname), name_payload(name))?);
        }
        attrs.push(attr(
            op,
            consts::IFLA_EXT_MASK,
            consts::RTEXT_FILTER_SKIP_STATS,
        )?);
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(index)
            .rtattrs(attrs)
            .build()
            .map_err(|e| NetlinkError::encode(op, e))?;
        let replies = match self.exchange::<_, Ifinfomsg>(op, Rtm::Getlink, NlmF::empty(), msg) {
            Ok(r) => r,
            Err(e) if e.errno() == Some(libc_errno::ENODEV) => return Ok(None),
            Err(e) => return Err(e),
        };
        match replies.into_iter().next() {
            Some(info) => parse_link(&info).map(Some),
            None => Err(NetlinkError::malformed(op, "no link in the reply")),
        }
    }

    /// `RTM_SETLINK` on ifindex `index` with everything in `change`, in one message.
    pub fn set_link(&mut self, index: u32, change: &LinkChange) -> Result<(), NetlinkError> {
        let op = Op::SetLink;
        let mut attrs = RtBuffer::new();
        if let Some(mac) = change.address {
            attrs.push(attr(op, u16::from(Ifla::Address), Buffer::from(&mac[..]))?);
        }
        if let Some(mtu) = change.mtu {
            attrs.push(attr(op, u16::from(Ifla::Mtu), mtu)?);
        }
        if let Some(master) = change.master {
            attrs.push(attr(op, u16::from(Ifla::Master), master)?);
        }
        let (flags, mask) = match change.up {
            Some(true) => (Iff::UP, Iff::UP),
            Some(false) => (Iff::empty(), Iff::UP),
            None => (Iff::empty(), Iff::empty()),
        };
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(
                i32::try_from(index)
                    .map_err(|_| NetlinkError::malformed(op, "ifindex out of range"))?,
            )
            .ifi_flags(flags)
            .ifi_change(mask)
            .rtattrs(attrs)
            .build()
            .map_err(|e| NetlinkError::encode(op, e))?;
        self.exchange::<_, Ifinfomsg>(op, Rtm::Setlink, NlmF::empty(), msg)
            .map(drop)
    }

    /// Bridge-port flags and VLANs of port `index`: VLAN removals in one `AF_BRIDGE`
    /// `RTM_DELLINK`, then flags (nested `IFLA_PROTINFO`) and VLAN additions (`IFLA_AF_SPEC`) in
    /// one `AF_BRIDGE` `RTM_SETLINK`, which the bridge applies as a unit.
    pub fn set_bridge_port(&mut self, index: u32, port: &BridgePort) -> Result<(), NetlinkError> {
        let op = Op::SetBridgePort;
        if !port.del_vlans.is_empty() {
            let msg = bridge_msg(op, index, None, &port.del_vlans)?;
            self.exchange::<_, Ifinfomsg>(op, Rtm::Dellink, NlmF::empty(), msg)?;
        }
        if port.has_flags() || !port.add_vlans.is_empty() {
            let mut flags = Vec::new();
            let mut flag = |ty: u16, v: Option<bool>| {
                if let Some(v) = v {
                    flags.push((ty, vec![u8::from(v)]));
                }
            };
            flag(consts::brport::ISOLATED, port.isolated);
            flag(consts::brport::MODE, port.hairpin);
            flag(consts::brport::LEARNING, port.learning);
            flag(consts::brport::UNICAST_FLOOD, port.flood);
            let protinfo = if flags.is_empty() { None } else { Some(flags) };
            let msg = bridge_msg(op, index, protinfo, &port.add_vlans)?;
            self.exchange::<_, Ifinfomsg>(op, Rtm::Setlink, NlmF::empty(), msg)?;
        }
        Ok(())
    }
}

/// An `AF_BRIDGE` link message for port `index` with optional `IFLA_PROTINFO` children and VLAN
/// entries (`IFLA_AF_SPEC`), ranges encoded with the RANGE_BEGIN/RANGE_END flags.
fn bridge_msg(
    op: Op,
    index: u32,
    protinfo: Option<Vec<(u16, Vec<u8>)>>,
    vlans: &[VlanEntry],
) -> Result<Ifinfomsg, NetlinkError> {
    let mut attrs = RtBuffer::new();
    if let Some(children) = protinfo {
        attrs.push(nested(op, u16::from(Ifla::Protinfo), &children)?);
    }
    if !vlans.is_empty() {
        use consts::bridge_af::*;
        let mut children = Vec::new();
        for v in vlans {
            let mut base = 0u16;
            if v.pvid {
                base |= VLAN_INFO_PVID;
            }
            if v.untagged {
                base |= VLAN_INFO_UNTAGGED;
            }
            let info = |flags: u16, vid: u16| {
                let mut b = flags.to_ne_bytes().to_vec();
                b.extend_from_slice(&vid.to_ne_bytes());
                (VLAN_INFO, b)
            };
            if v.first == v.last {
                children.push(info(base, v.first));
            } else {
                children.push(info(base | VLAN_INFO_RANGE_BEGIN, v.first));
                children.push(info(base | VLAN_INFO_RANGE_END, v.last));
            }
        }
        attrs.push(nested(op, u16::from(Ifla::AfSpec), &children)?);
    }
    IfinfomsgBuilder::default()
        .ifi_family(RtAddrFamily::from(consts::AF_BRIDGE))
        .ifi_index(
            i32::try_from(index)
                .map_err(|_| NetlinkError::malformed(op, "ifindex out of range"))?,
        )
        .rtattrs(attrs)
        .build()
        .map_err(|e| NetlinkError::encode(op, e))
}

/// Walk a nested attribute payload: (type without flag bits, payload) pairs.
fn walk(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
        Some((ty, payload))
    })
}

fn u32_of(p: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(p.get(..4)?.try_into().ok()?))
}

fn parse_link(info: &Ifinfomsg) -> Result<Link, NetlinkError> {
    let op = Op::GetLink;
    let index = u32::try_from(*info.ifi_index())
        .map_err(|_| NetlinkError::malformed(op, "negative ifindex"))?;
    let flags = info.ifi_flags();
    let mut link = Link {
        index,
        name: String::new(),
        kind: None,
        mtu: 0,
        master: None,
        up: flags.contains(Iff::UP),
        loopback: flags.contains(Iff::LOOPBACK),
        address: None,
        tun: None,
        bridge: None,
    };
    let mut info_data: Option<&[u8]> = None;
    for a in info.rtattrs().iter() {
        let ty = u16::from(*a.rta_type()) & NLA_TYPE_MASK;
        let p = a.rta_payload().as_ref();
        match Ifla::from(ty) {
            Ifla::Ifname => link.name = c_string(p),
            Ifla::Mtu => link.mtu = u32_of(p).unwrap_or(0),
            Ifla::Master => link.master = u32_of(p).filter(|&m| m != 0),
            Ifla::Address => link.address = Some(p.to_vec()),
            Ifla::Linkinfo => {
                for (ity, ip) in walk(p) {
                    match ity {
                        1 => link.kind = Some(c_string(ip)), // IFLA_INFO_KIND
                        2 => info_data = Some(ip),           // IFLA_INFO_DATA
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    match (link.kind.as_deref(), info_data) {
        (Some("tun"), data) => {
            let mut t = TunInfo {
                tap: false,
                owner: None,
                group: None,
                persist: false,
            };
            for (ty, p) in walk(data.unwrap_or(&[])) {
                match ty {
                    consts::tun::OWNER => t.owner = u32_of(p),
                    consts::tun::GROUP => t.group = u32_of(p),
                    consts::tun::TYPE => t.tap = p.first() == Some(&consts::tun::IFF_TAP),
                    consts::tun::PERSIST => t.persist = p.first().is_some_and(|&v| v != 0),
                    _ => {}
                }
            }
            link.tun = Some(t);
        }
        (Some("bridge"), data) => {
            let mut b = BridgeInfo::default();
            for (ty, p) in walk(data.unwrap_or(&[])) {
                match ty {
                    consts::br::VLAN_FILTERING => {
                        b.vlan_filtering = p.first().is_some_and(|&v| v != 0)
                    }
                    consts::br::STP_STATE => b.stp = u32_of(p).is_some_and(|v| v != 0),
                    consts::br::FORWARD_DELAY => b.forward_delay = u32_of(p).unwrap_or(0),
                    consts::br::VLAN_DEFAULT_PVID => {
                        b.default_pvid = p.get(..2).map(|v| u16::from_ne_bytes([v[0], v[1]]))
                    }
                    consts::br::NF_CALL_IPTABLES => {
                        b.nf_call_iptables = p.first().is_some_and(|&v| v != 0)
                    }
                    _ => {}
                }
            }
            link.bridge = Some(b);
        }
        _ => {}
    }
    if link.name.is_empty() {
        return Err(NetlinkError::malformed(op, "link without a name"));
    }
    Ok(link)
}
