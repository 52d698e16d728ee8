//! Link operations: look a link up (by name or index, never by dumping them all), change it,
//! read and set its bridge-port flags and VLANs.

use neli::consts::rtnl::Rtm;

use crate::consts::{self, br, bridge, brport, ifla, inet, tun, AF_BRIDGE};
use crate::error::{NetlinkError, Op};
use crate::route::{addr_bytes, family};
use crate::socket::{ifinfomsg, Socket, IFINFOMSG_LEN, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use crate::wire::{self, attrs, c_string, flag_of, nest, push_attr, u16_of, u32_of};

use crate::consts::ifla::{
    ADDRESS as IFLA_ADDRESS, AF_SPEC as IFLA_AF_SPEC, IFNAME as IFLA_IFNAME,
    LINKINFO as IFLA_LINKINFO, MASTER as IFLA_MASTER, MTU as IFLA_MTU, PROTINFO as IFLA_PROTINFO,
};
use crate::consts::{IFF_LOOPBACK, IFF_UP};

/// What the kernel says about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    /// The kernel's name of the link (never an alternative name, even when the lookup used one).
    pub name: String,
    /// `IFLA_INFO_KIND` (`tun`, `bridge`, `veth`, …); `None` for links without one (`lo`, NICs).
    pub kind: Option<String>,
    pub mtu: u32,
    /// `IFLA_MAX_MTU`: the largest MTU the device accepts (not reported before Linux 4.19).
    pub max_mtu: Option<u32>,
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
    /// For a port of a bridge: its flags (`IFLA_INFO_SLAVE_DATA`).
    pub port: Option<PortFlags>,
    /// The IPv4 `proxy_arp` setting of the link (`IFLA_AF_SPEC`), when the kernel reports it.
    pub proxy_arp: Option<bool>,
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

/// The flags of a bridge port (`IFLA_BRPORT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortFlags {
    pub isolated: bool,
    pub hairpin: bool,
    pub learning: bool,
    pub flood: bool,
}

impl PortFlags {
    /// What the kernel gives a new bridge port (`new_nbp()`): learning and unicast flooding on,
    /// hairpin and isolation off.
    pub const NEW_PORT: PortFlags = PortFlags {
        isolated: false,
        hairpin: false,
        learning: true,
        flood: true,
    };
}

impl Link {
    /// True for a tap: kind `tun` with tun type tap.
    pub fn is_tap(&self) -> bool {
        self.kind.as_deref() == Some("tun") && self.tun.is_some_and(|t| t.tap)
    }

    pub fn is_bridge(&self) -> bool {
        self.kind.as_deref() == Some("bridge")
    }

    /// A short description for messages: "a veth device", "a tun device", "the loopback device".
    pub fn describe(&self) -> String {
        if self.loopback {
            return "the loopback device".into();
        }
        match self.kind.as_deref() {
            Some(kind) => format!("a {kind} device"),
            None => "a device with no link kind (a physical NIC?)".into(),
        }
    }
}

/// The changes one `RTM_SETLINK` makes. Fields left `None` are not touched.
///
/// The kernel (`do_setlink()` in net/core/rtnetlink.c) applies the address and the MTU before
/// the up/down flag and the master, in every version. Whether the flag or the master comes first
/// differs: the flag first, except in Linux 6.7 (commit a4abfa627c38 put the master first; its
/// revert in 6.8 restored the order, and was backported to 6.7.y). So a change that must happen
/// before the tap joins its bridge (setting it down) is never combined with `master`: see the
/// planner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkChange {
    pub address: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub up: Option<bool>,
    /// `Some(0)` detaches from the current master.
    pub master: Option<u32>,
    /// The IPv4 `proxy_arp` setting (`IFLA_AF_SPEC` / `AF_INET` / `IFLA_INET_CONF`).
    pub proxy_arp: Option<bool>,
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

/// Bridge-port settings: flags and VLANs to add in one `AF_BRIDGE` `RTM_SETLINK`, VLANs to
/// remove in an `AF_BRIDGE` `RTM_DELLINK` sent first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgePort {
    pub isolated: Option<bool>,
    pub hairpin: Option<bool>,
    pub learning: Option<bool>,
    pub flood: Option<bool>,
    /// VLANs to add to the port (or to change the flags of).
    pub add_vlans: Vec<VlanEntry>,
    /// VLANs to remove from the port.
    pub del_vlans: Vec<VlanEntry>,
}

impl BridgePort {
    fn flags(&self) -> Vec<(u16, Vec<u8>)> {
        [
            (brport::ISOLATED, self.isolated),
            (brport::MODE, self.hairpin),
            (brport::LEARNING, self.learning),
            (brport::UNICAST_FLOOD, self.flood),
        ]
        .into_iter()
        .filter_map(|(ty, v)| v.map(|on| (ty, vec![u8::from(on)])))
        .collect()
    }

    pub fn is_empty(&self) -> bool {
        *self == BridgePort::default()
    }
}

impl Socket {
    /// `RTM_GETLINK` by name (the kernel also matches alternative names: the reply carries the
    /// link's own name). `Ok(None)` when no such link exists.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        self.get_link(0, Some(name))
    }

    /// `RTM_GETLINK` by ifindex. `Ok(None)` when no such link exists.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, NetlinkError> {
        self.get_link(index, None)
    }

    fn get_link(&mut self, index: u32, name: Option<&str>) -> Result<Option<Link>, NetlinkError> {
        let op = Op::GetLink;
        let mut body = ifinfomsg(0, index, 0, 0);
        if let Some(name) = name {
            push_name(&mut body, name);
        }
        push_attr(
            &mut body,
            ifla::EXT_MASK,
            &ifla::RTEXT_FILTER_SKIP_STATS.to_ne_bytes(),
        );
        let replies = match self.request(op, Rtm::Getlink.into(), 0, &body) {
            Ok(r) => r,
            Err(e) if e.errno() == Some(nix::errno::Errno::ENODEV) => return Ok(None),
            Err(e) => return Err(e),
        };
        match replies.first() {
            Some(payload) => parse_link(payload).map(Some),
            None => Err(NetlinkError::malformed(op, "no link in the reply")),
        }
    }

    /// `RTM_SETLINK` on ifindex `index` with everything in `change`, in one message.
    pub fn set_link(&mut self, index: u32, change: &LinkChange) -> Result<(), NetlinkError> {
        let (flags, mask) = match change.up {
            Some(true) => (IFF_UP, IFF_UP),
            Some(false) => (0, IFF_UP),
            None => (0, 0),
        };
        let mut body = ifinfomsg(0, index, flags, mask);
        if let Some(mac) = change.address {
            push_attr(&mut body, IFLA_ADDRESS, &mac);
        }
        if let Some(mtu) = change.mtu {
            push_attr(&mut body, IFLA_MTU, &mtu.to_ne_bytes());
        }
        if let Some(master) = change.master {
            push_attr(&mut body, IFLA_MASTER, &master.to_ne_bytes());
        }
        if let Some(on) = change.proxy_arp {
            let conf = nest(&[(
                inet::DEVCONF_PROXY_ARP,
                u32::from(on).to_ne_bytes().to_vec(),
            )]);
            let af = nest(&[(inet::IFLA_INET_CONF | consts::nl::NLA_F_NESTED, conf)]);
            let spec = nest(&[(inet::AF_INET | consts::nl::NLA_F_NESTED, af)]);
            push_attr(&mut body, IFLA_AF_SPEC | consts::nl::NLA_F_NESTED, &spec);
        }
        self.request(Op::SetLink, Rtm::Setlink.into(), 0, &body)
            .map(drop)
    }

    /// `RTM_NEWLINK` (`NLM_F_CREATE | NLM_F_EXCL`) of a bridge: STP off, forward delay 0, the
    /// MAC `mac` set explicitly, down. `EEXIST` when a link of that name exists.
    pub fn new_bridge(&mut self, name: &str, mac: [u8; 6]) -> Result<(), NetlinkError> {
        let mut body = ifinfomsg(0, 0, 0, 0);
        push_name(&mut body, name);
        push_attr(&mut body, IFLA_ADDRESS, &mac);
        let data = nest(&[
            (br::STP_STATE, 0u32.to_ne_bytes().to_vec()),
            (br::FORWARD_DELAY, 0u32.to_ne_bytes().to_vec()),
        ]);
        let info = nest(&[
            (ifla::INFO_KIND, b"bridge".to_vec()),
            (ifla::INFO_DATA | consts::nl::NLA_F_NESTED, data),
        ]);
        push_attr(&mut body, IFLA_LINKINFO | consts::nl::NLA_F_NESTED, &info);
        self.request(
            Op::NewLink,
            Rtm::Newlink.into(),
            NLM_F_CREATE | NLM_F_EXCL,
            &body,
        )
        .map(drop)
    }

    /// `RTM_NEWADDR` (`NLM_F_CREATE | NLM_F_EXCL`) of `addr/len` on link `index`; an IPv6
    /// address skips duplicate address detection (usable at once). `EEXIST` when it is there.
    pub fn add_address(
        &mut self,
        index: u32,
        addr: std::net::IpAddr,
        len: u8,
    ) -> Result<(), NetlinkError> {
        let (bytes, flags) = (
            addr_bytes(&addr),
            if addr.is_ipv6() {
                consts::ifa::F_NODAD
            } else {
                0
            },
        );
        // struct ifaddrmsg: family, prefix length, flags, scope, index.
        let mut body = vec![family(&addr), len, flags, 0];
        body.extend_from_slice(&index.to_ne_bytes());
        push_attr(&mut body, consts::ifa::LOCAL, &bytes);
        push_attr(&mut body, consts::ifa::ADDRESS, &bytes);
        self.request(
            Op::NewAddress,
            Rtm::Newaddr.into(),
            NLM_F_CREATE | NLM_F_EXCL,
            &body,
        )
        .map(drop)
    }

    /// Bridge-port flags and VLANs of port `index`: VLAN removals in one `AF_BRIDGE`
    /// `RTM_DELLINK`, then flags (nested `IFLA_PROTINFO`) and VLAN additions (`IFLA_AF_SPEC`) in
    /// one `AF_BRIDGE` `RTM_SETLINK`, which the bridge applies as a unit.
    pub fn set_bridge_port(&mut self, index: u32, port: &BridgePort) -> Result<(), NetlinkError> {
        let op = Op::SetBridgePort;
        if !port.del_vlans.is_empty() {
            let body = bridge_msg(index, &[], &port.del_vlans);
            self.request(op, Rtm::Dellink.into(), 0, &body)?;
        }
        let flags = port.flags();
        if !flags.is_empty() || !port.add_vlans.is_empty() {
            let body = bridge_msg(index, &flags, &port.add_vlans);
            self.request(op, Rtm::Setlink.into(), 0, &body)?;
        }
        Ok(())
    }

    /// The VLANs of bridge port `index`, by an `RTM_GETVLAN` dump filtered to that port (Linux
    /// 5.8 and later). Ranges come back as one entry.
    pub fn port_vlans(&mut self, index: u32) -> Result<Vec<VlanEntry>, NetlinkError> {
        // struct br_vlan_msg: family, two reserved fields, ifindex.
        let mut body = vec![AF_BRIDGE, 0, 0, 0];
        body.extend_from_slice(&index.to_ne_bytes());
        let replies = self.request(Op::GetVlans, bridge::RTM_GETVLAN, NLM_F_DUMP, &body)?;
        let mut out = Vec::new();
        for payload in &replies {
            out.extend(parse_vlans(payload, index));
        }
        Ok(out)
    }
}

/// An `AF_BRIDGE` link message for port `index` with `IFLA_PROTINFO` children (flags) and VLAN
/// entries (`IFLA_AF_SPEC`), ranges encoded with the RANGE_BEGIN/RANGE_END flags.
/// `IFLA_PROTINFO` must carry `NLA_F_NESTED`: without it the kernel reads the payload as a legacy
/// STP port state.
/// `IFLA_IFNAME`: the name, NUL-terminated.
fn push_name(body: &mut Vec<u8>, name: &str) {
    let mut z = name.as_bytes().to_vec();
    z.push(0);
    push_attr(body, IFLA_IFNAME, &z);
}

fn bridge_msg(index: u32, protinfo: &[(u16, Vec<u8>)], vlans: &[VlanEntry]) -> Vec<u8> {
    let mut body = ifinfomsg(AF_BRIDGE, index, 0, 0);
    if !protinfo.is_empty() {
        push_attr(
            &mut body,
            IFLA_PROTINFO | consts::nl::NLA_F_NESTED,
            &nest(protinfo),
        );
    }
    if !vlans.is_empty() {
        let mut children = Vec::new();
        for v in vlans {
            let mut base = 0u16;
            if v.pvid {
                base |= bridge::VLAN_INFO_PVID;
            }
            if v.untagged {
                base |= bridge::VLAN_INFO_UNTAGGED;
            }
            let info = |flags: u16, vid: u16| {
                let mut b = flags.to_ne_bytes().to_vec();
                b.extend_from_slice(&vid.to_ne_bytes());
                (bridge::VLAN_INFO, b)
            };
            if v.first == v.last {
                children.push(info(base, v.first));
            } else {
                children.push(info(base | bridge::VLAN_INFO_RANGE_BEGIN, v.first));
                children.push(info(base | bridge::VLAN_INFO_RANGE_END, v.last));
            }
        }
        push_attr(
            &mut body,
            IFLA_AF_SPEC | consts::nl::NLA_F_NESTED,
            &nest(&children),
        );
    }
    body
}

/// The VLAN entries of one `RTM_NEWVLAN` reply, if it is about port `index`.
fn parse_vlans(payload: &[u8], index: u32) -> Vec<VlanEntry> {
    let mut out = Vec::new();
    let (Some(head), Some(rest)) = (payload.get(..8), payload.get(8..)) else {
        return out;
    };
    if u32_of(&head[4..]) != Some(index) {
        return out;
    }
    for (ty, entry) in attrs(rest) {
        if ty != bridge::VLANDB_ENTRY {
            continue;
        }
        let Some(info) = wire::attr(entry, bridge::VLANDB_ENTRY_INFO) else {
            continue;
        };
        let (Some(flags), Some(vid)) = (u16_of(info), info.get(2..).and_then(u16_of)) else {
            continue;
        };
        let last = wire::attr(entry, bridge::VLANDB_ENTRY_RANGE)
            .and_then(u16_of)
            .unwrap_or(vid);
        out.push(VlanEntry {
            first: vid,
            last: last.max(vid),
            pvid: flags & bridge::VLAN_INFO_PVID != 0,
            untagged: flags & bridge::VLAN_INFO_UNTAGGED != 0,
        });
    }
    out
}

/// A link from the payload of an `RTM_NEWLINK` reply (`struct ifinfomsg` and attributes).
pub fn parse_link(payload: &[u8]) -> Result<Link, NetlinkError> {
    let op = Op::GetLink;
    let head = payload
        .get(..IFINFOMSG_LEN)
        .ok_or_else(|| NetlinkError::malformed(op, "short link message"))?;
    let index = u32_of(&head[4..8]).unwrap_or(0);
    let flags = u32_of(&head[8..12]).unwrap_or(0);
    if index == 0 || index > i32::MAX as u32 {
        return Err(NetlinkError::malformed(op, "bad ifindex"));
    }
    let mut link = Link {
        index,
        name: String::new(),
        kind: None,
        mtu: 0,
        max_mtu: None,
        master: None,
        up: flags & IFF_UP != 0,
        loopback: flags & IFF_LOOPBACK != 0,
        address: None,
        tun: None,
        bridge: None,
        port: None,
        proxy_arp: None,
    };
    let (mut info_data, mut slave_kind, mut slave_data) = (None, None, None);
    for (ty, p) in attrs(&payload[IFINFOMSG_LEN..]) {
        match ty {
            IFLA_IFNAME => link.name = c_string(p),
            IFLA_MTU => link.mtu = u32_of(p).unwrap_or(0),
            ifla::MAX_MTU => link.max_mtu = u32_of(p),
            IFLA_MASTER => link.master = u32_of(p).filter(|&m| m != 0),
            IFLA_ADDRESS => link.address = Some(p.to_vec()),
            IFLA_AF_SPEC => link.proxy_arp = parse_proxy_arp(p),
            IFLA_LINKINFO => {
                for (ity, ip) in attrs(p) {
                    match ity {
                        ifla::INFO_KIND => link.kind = Some(c_string(ip)),
                        ifla::INFO_DATA => info_data = Some(ip),
                        ifla::INFO_SLAVE_KIND => slave_kind = Some(c_string(ip)),
                        ifla::INFO_SLAVE_DATA => slave_data = Some(ip),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let data = info_data.unwrap_or(&[]);
    match link.kind.as_deref() {
        Some("tun") => link.tun = Some(parse_tun(data)),
        Some("bridge") => link.bridge = Some(parse_bridge(data)),
        _ => {}
    }
    if slave_kind.as_deref() == Some("bridge") {
        link.port = Some(parse_port(slave_data.unwrap_or(&[])));
    }
    if link.name.is_empty() {
        return Err(NetlinkError::malformed(op, "link without a name"));
    }
    Ok(link)
}

/// `proxy_arp` from a link's `IFLA_AF_SPEC`: `AF_INET` / `IFLA_INET_CONF`, an array of `u32`
/// indexed by setting number - 1.
fn parse_proxy_arp(af_spec: &[u8]) -> Option<bool> {
    let inet = wire::attr(af_spec, inet::AF_INET)?;
    let conf = wire::attr(inet, inet::IFLA_INET_CONF)?;
    let at = usize::from(inet::DEVCONF_PROXY_ARP - 1) * 4;
    u32_of(conf.get(at..)?).map(|v| v != 0)
}

fn parse_tun(data: &[u8]) -> TunInfo {
    let mut t = TunInfo {
        tap: false,
        owner: None,
        group: None,
        persist: false,
    };
    for (ty, p) in attrs(data) {
        match ty {
            tun::OWNER => t.owner = u32_of(p),
            tun::GROUP => t.group = u32_of(p),
            tun::TYPE => t.tap = p.first() == Some(&tun::IFF_TAP),
            tun::PERSIST => t.persist = flag_of(p).unwrap_or(false),
            _ => {}
        }
    }
    t
}

fn parse_bridge(data: &[u8]) -> BridgeInfo {
    let mut b = BridgeInfo::default();
    for (ty, p) in attrs(data) {
        match ty {
            br::VLAN_FILTERING => b.vlan_filtering = flag_of(p).unwrap_or(false),
            br::STP_STATE => b.stp = u32_of(p).is_some_and(|v| v != 0),
            br::FORWARD_DELAY => b.forward_delay = u32_of(p).unwrap_or(0),
            br::VLAN_DEFAULT_PVID => b.default_pvid = u16_of(p),
            br::NF_CALL_IPTABLES => b.nf_call_iptables = flag_of(p).unwrap_or(false),
            _ => {}
        }
    }
    b
}

fn parse_port(data: &[u8]) -> PortFlags {
    let mut f = PortFlags::NEW_PORT;
    for (ty, p) in attrs(data) {
        let Some(on) = flag_of(p) else { continue };
        match ty {
            brport::ISOLATED => f.isolated = on,
            brport::MODE => f.hairpin = on,
            brport::LEARNING => f.learning = on,
            brport::UNICAST_FLOOD => f.flood = on,
            _ => {}
        }
    }
    f
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An `RTM_NEWLINK` payload with the given attributes.
    fn link_payload(index: u32, flags: u32, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = ifinfomsg(0, index, flags, 0);
        for (ty, p) in attrs {
            push_attr(&mut b, *ty, p);
        }
        b
    }

    #[test]
    fn parses_a_tap_port() {
        let linkinfo = nest(&[
            (ifla::INFO_KIND, b"tun\0".to_vec()),
            (
                ifla::INFO_DATA,
                nest(&[
                    (tun::TYPE, vec![tun::IFF_TAP]),
                    (tun::OWNER, 1000u32.to_ne_bytes().to_vec()),
                    (tun::PERSIST, vec![1]),
                ]),
            ),
            (ifla::INFO_SLAVE_KIND, b"bridge\0".to_vec()),
            (
                ifla::INFO_SLAVE_DATA,
                nest(&[(brport::ISOLATED, vec![1]), (brport::LEARNING, vec![0])]),
            ),
        ]);
        let p = link_payload(
            7,
            IFF_UP,
            &[
                (IFLA_IFNAME, b"vm0\0".to_vec()),
                (IFLA_MTU, 1400u32.to_ne_bytes().to_vec()),
                (ifla::MAX_MTU, 65521u32.to_ne_bytes().to_vec()),
                (IFLA_MASTER, 3u32.to_ne_bytes().to_vec()),
                (IFLA_ADDRESS, vec![0xfe, 0, 0, 0, 0, 1]),
                (IFLA_LINKINFO | consts::nl::NLA_F_NESTED, linkinfo),
            ],
        );
        let l = parse_link(&p).unwrap();
        assert_eq!((l.index, l.name.as_str(), l.mtu), (7, "vm0", 1400));
        assert_eq!((l.max_mtu, l.master, l.up), (Some(65521), Some(3), true));
        assert!(l.is_tap());
        let t = l.tun.unwrap();
        assert_eq!((t.owner, t.group, t.persist), (Some(1000), None, true));
        assert_eq!(
            l.port,
            Some(PortFlags {
                isolated: true,
                learning: false,
                ..PortFlags::NEW_PORT
            })
        );
    }

    #[test]
    fn malformed_links_are_errors_not_panics() {
        assert!(parse_link(&[]).is_err());
        assert!(parse_link(&[0; 15]).is_err());
        // No name.
        assert!(parse_link(&link_payload(1, 0, &[])).is_err());
        // ifindex 0 or negative.
        let named = [(IFLA_IFNAME, b"x\0".to_vec())];
        assert!(parse_link(&link_payload(0, 0, &named)).is_err());
        assert!(parse_link(&link_payload(u32::MAX, 0, &named)).is_err());
        // Short attribute payloads are read as absent.
        let l = parse_link(&link_payload(
            1,
            0,
            &[
                (IFLA_IFNAME, b"x".to_vec()),
                (IFLA_MTU, vec![1, 2]),
                (IFLA_MASTER, vec![]),
            ],
        ))
        .unwrap();
        assert_eq!((l.name.as_str(), l.mtu, l.master), ("x", 0, None));
    }

    #[test]
    fn vlan_dump_entries() {
        let entry = |flags: u16, vid: u16, range: Option<u16>| {
            let mut info = flags.to_ne_bytes().to_vec();
            info.extend_from_slice(&vid.to_ne_bytes());
            let mut children = vec![(bridge::VLANDB_ENTRY_INFO, info)];
            if let Some(end) = range {
                children.push((bridge::VLANDB_ENTRY_RANGE, end.to_ne_bytes().to_vec()));
            }
            (bridge::VLANDB_ENTRY, nest(&children))
        };
        let mut p = vec![AF_BRIDGE, 0, 0, 0];
        p.extend_from_slice(&9u32.to_ne_bytes());
        for (ty, body) in [
            entry(
                bridge::VLAN_INFO_PVID | bridge::VLAN_INFO_UNTAGGED,
                20,
                None,
            ),
            entry(0, 30, Some(39)),
        ] {
            push_attr(&mut p, ty, &body);
        }
        assert_eq!(
            parse_vlans(&p, 9),
            [
                VlanEntry {
                    first: 20,
                    last: 20,
                    pvid: true,
                    untagged: true
                },
                VlanEntry {
                    first: 30,
                    last: 39,
                    pvid: false,
                    untagged: false
                }
            ]
        );
        // Another port's entries, and short messages, are not ours.
        assert!(parse_vlans(&p, 8).is_empty());
        assert!(parse_vlans(&p[..6], 9).is_empty());
    }

    #[test]
    fn bridge_message_encodes_ranges_and_nested_protinfo() {
        let port = BridgePort {
            isolated: Some(true),
            add_vlans: vec![VlanEntry {
                first: 10,
                last: 12,
                pvid: false,
                untagged: false,
            }],
            ..BridgePort::default()
        };
        let b = bridge_msg(4, &port.flags(), &port.add_vlans);
        assert_eq!(b[0], AF_BRIDGE);
        let all: Vec<_> = attrs(&b[IFINFOMSG_LEN..]).collect();
        assert_eq!(all.len(), 2);
        // The nested bit survives on the wire (masked only when reading).
        assert_eq!(
            u16::from_ne_bytes([b[IFINFOMSG_LEN + 2], b[IFINFOMSG_LEN + 3]]),
            IFLA_PROTINFO | consts::nl::NLA_F_NESTED
        );
        assert_eq!(all[0].1, &nest(&[(brport::ISOLATED, vec![1])])[..]);
        let vlans: Vec<_> = attrs(all[1].1).collect();
        assert_eq!(vlans.len(), 2);
        assert_eq!(
            vlans[0].1,
            &[
                bridge::VLAN_INFO_RANGE_BEGIN.to_ne_bytes(),
                10u16.to_ne_bytes()
            ]
            .concat()[..]
        );
        assert_eq!(
            vlans[1].1,
            &[
                bridge::VLAN_INFO_RANGE_END.to_ne_bytes(),
                12u16.to_ne_bytes()
            ]
            .concat()[..]
        );
    }
}
