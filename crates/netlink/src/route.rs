//! Routes of the main table: reading them (whole, or filtered by device and protocol), and
//! adding and removing the routes of a routed tap.

use std::net::IpAddr;

use neli::consts::rtnl::Rtm;

use crate::consts::{rt, AF_INET, AF_INET6};
use crate::error::{NetlinkError, Op};
use crate::socket::{Socket, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use crate::wire::{attrs, push_attr, u32_of};

/// The size of `struct rtmsg`, and of `struct rtnexthop` (`RTNH_LENGTH(0)`).
const RTMSG_LEN: usize = 12;
const RTNH_LEN: usize = 8;

/// A route of the main table, as far as the helper looks at one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpAddr,
    pub dst_len: u8,
    /// `rtm_type` (`RTN_UNICAST` = 1, blackhole, unreachable, ...).
    pub kind: u8,
    /// `rtm_protocol`: who added it.
    pub protocol: u8,
    /// `RTA_PRIORITY`, the metric (0 when absent).
    pub metric: u32,
    /// The output devices: `RTA_OIF`, or each next hop's.
    pub devices: Vec<u32>,
}

impl Route {
    /// A route that delivers through its devices (not a blackhole, unreachable, ...).
    pub fn is_unicast(&self) -> bool {
        self.kind == rt::RTN_UNICAST
    }

    /// A unicast default route with at least one device.
    pub fn is_default(&self) -> bool {
        self.dst_len == 0 && self.is_unicast() && !self.devices.is_empty()
    }
}

/// A route to add or remove: `dst/dst_len` to device `oif`, main table, unicast, added by
/// `protocol` (scope link for IPv4; IPv6 routes have no scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    pub dst: IpAddr,
    pub dst_len: u8,
    pub oif: u32,
    pub protocol: u8,
}

/// `AF_INET` or `AF_INET6`.
pub(crate) fn family(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

/// The address as the kernel takes it in an attribute (4 or 16 bytes).
pub(crate) fn addr_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// `struct rtmsg`: family, destination length, table, protocol, scope, type; the rest zero.
fn rtmsg(family: u8, dst_len: u8, protocol: u8, scope: u8, kind: u8) -> Vec<u8> {
    let mut b = vec![0u8; RTMSG_LEN];
    b[0] = family;
    b[1] = dst_len;
    b[4] = rt::TABLE_MAIN;
    b[5] = protocol;
    b[6] = scope;
    b[7] = kind;
    b
}

impl Socket {
    /// The routes of the main table of `family` (`AF_INET`/`AF_INET6`), filtered by the kernel
    /// to output device `oif` and to `protocol` when given (strict dump filtering).
    pub fn routes(
        &mut self,
        family: u8,
        oif: Option<u32>,
        protocol: Option<u8>,
    ) -> Result<Vec<Route>, NetlinkError> {
        let mut body = rtmsg(family, 0, protocol.unwrap_or(0), 0, 0);
        push_attr(
            &mut body,
            rt::RTA_TABLE,
            &u32::from(rt::TABLE_MAIN).to_ne_bytes(),
        );
        if let Some(oif) = oif {
            push_attr(&mut body, rt::RTA_OIF, &oif.to_ne_bytes());
        }
        let replies = match self.request(Op::GetRoute, Rtm::Getroute.into(), NLM_F_DUMP, &body) {
            Ok(r) => r,
            // Strict dumps of a table that does not exist (no route at all) end in ENOENT.
            Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(replies
            .iter()
            .filter_map(|p| parse_route(p, family))
            // Kernels without strict checking ignore the filters: apply them here too.
            .filter(|r| oif.map_or(true, |d| r.devices.contains(&d)))
            .filter(|r| protocol.map_or(true, |p| p == r.protocol))
            .collect())
    }

    /// `RTM_NEWROUTE` with `NLM_F_CREATE | NLM_F_EXCL`: `EEXIST` if that route exists.
    pub fn add_route(&mut self, spec: &RouteSpec) -> Result<(), NetlinkError> {
        let body = route_msg(spec);
        self.request(
            Op::SetRoute,
            Rtm::Newroute.into(),
            NLM_F_CREATE | NLM_F_EXCL,
            &body,
        )
        .map(drop)
    }

    /// `RTM_DELROUTE` of exactly that route (destination, device, protocol).
    pub fn del_route(&mut self, spec: &RouteSpec) -> Result<(), NetlinkError> {
        let body = route_msg(spec);
        self.request(Op::SetRoute, Rtm::Delroute.into(), 0, &body)
            .map(drop)
    }
}

fn route_msg(spec: &RouteSpec) -> Vec<u8> {
    let fam = family(&spec.dst);
    let scope = if fam == AF_INET {
        rt::SCOPE_LINK
    } else {
        rt::SCOPE_UNIVERSE
    };
    let mut body = rtmsg(fam, spec.dst_len, spec.protocol, scope, rt::RTN_UNICAST);
    push_attr(&mut body, rt::RTA_DST, &addr_bytes(&spec.dst));
    push_attr(&mut body, rt::RTA_OIF, &spec.oif.to_ne_bytes());
    body
}

/// A route of the main table of `family` from an `RTM_NEWROUTE` payload.
fn parse_route(payload: &[u8], family: u8) -> Option<Route> {
    let head = payload.get(..RTMSG_LEN)?;
    let (fam, dst_len, table, protocol, kind) = (head[0], head[1], head[4], head[5], head[7]);
    if fam != family {
        return None;
    }
    let mut table = u32::from(table);
    let mut devices = Vec::new();
    let mut dst = None;
    let mut metric = 0;
    for (ty, p) in attrs(&payload[RTMSG_LEN..]) {
        match ty {
            rt::RTA_TABLE => table = u32_of(p).unwrap_or(table),
            rt::RTA_PRIORITY => metric = u32_of(p).unwrap_or(0),
            rt::RTA_OIF => devices.extend(u32_of(p)),
            rt::RTA_MULTIPATH => devices.extend(nexthop_devices(p)),
            rt::RTA_DST => dst = ip_of(p),
            _ => {}
        }
    }
    let dst = match (dst, dst_len) {
        (Some(d), _) => d,
        // A default route has no RTA_DST.
        (None, 0) if family == AF_INET => IpAddr::from([0u8; 4]),
        (None, 0) => IpAddr::from([0u8; 16]),
        (None, _) => return None,
    };
    (table == u32::from(rt::TABLE_MAIN)).then_some(Route {
        dst,
        dst_len,
        kind,
        protocol,
        metric,
        devices,
    })
}

fn ip_of(p: &[u8]) -> Option<IpAddr> {
    match p.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(p).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(p).ok()?)),
        _ => None,
    }
}

/// The `rtnh_ifindex` of each `struct rtnexthop` in an `RTA_MULTIPATH` payload.
fn nexthop_devices(mut p: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    while p.len() >= RTNH_LEN {
        let len = usize::from(u16::from_ne_bytes([p[0], p[1]]));
        if len < RTNH_LEN || len > p.len() {
            break;
        }
        if let Some(dev) = u32_of(&p[4..8]).filter(|&d| d != 0) {
            out.push(dev);
        }
        p = p.get(crate::wire::align4(len)..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn route(family: u8, dst_len: u8, ty: u8, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = rtmsg(family, dst_len, 4, 0, ty);
        for (t, p) in attrs {
            push_attr(&mut b, *t, p);
        }
        b
    }

    fn nexthop(dev: u32) -> Vec<u8> {
        let mut n = 8u16.to_ne_bytes().to_vec();
        n.extend_from_slice(&[0, 0]);
        n.extend_from_slice(&dev.to_ne_bytes());
        n
    }

    #[test]
    fn single_and_multipath_routes() {
        let r = route(
            AF_INET,
            0,
            rt::RTN_UNICAST,
            &[
                (rt::RTA_OIF, 5u32.to_ne_bytes().to_vec()),
                (rt::RTA_PRIORITY, 100u32.to_ne_bytes().to_vec()),
            ],
        );
        let r = parse_route(&r, AF_INET).unwrap();
        assert_eq!(
            (r.dst, r.dst_len, r.devices.clone()),
            (IpAddr::from([0, 0, 0, 0]), 0, vec![5])
        );
        assert_eq!(r.metric, 100);
        let mp = [nexthop(7), nexthop(3)].concat();
        let r = route(AF_INET, 0, rt::RTN_UNICAST, &[(rt::RTA_MULTIPATH, mp)]);
        assert_eq!(parse_route(&r, AF_INET).unwrap().devices, [7, 3]);
        let r = route(
            AF_INET6,
            128,
            rt::RTN_UNICAST,
            &[
                (
                    rt::RTA_DST,
                    vec![0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10],
                ),
                (rt::RTA_OIF, 9u32.to_ne_bytes().to_vec()),
            ],
        );
        let r = parse_route(&r, AF_INET6).unwrap();
        assert_eq!(r.dst.to_string(), "2001:db8::10");
        assert_eq!((r.dst_len, r.protocol), (128, 4));
    }

    #[test]
    fn malformed_and_other_routes() {
        let oif = [(rt::RTA_OIF, 5u32.to_ne_bytes().to_vec())];
        // Another family, another table, a prefix without a destination, a short message.
        assert_eq!(parse_route(&route(AF_INET6, 0, 1, &oif), AF_INET), None);
        let mut other = oif.to_vec();
        other.push((rt::RTA_TABLE, 100u32.to_ne_bytes().to_vec()));
        assert_eq!(parse_route(&route(AF_INET, 0, 1, &other), AF_INET), None);
        assert_eq!(parse_route(&route(AF_INET, 24, 1, &oif), AF_INET), None);
        assert_eq!(parse_route(&[0; 5], AF_INET), None);
        // A destination of the wrong size is no destination.
        let bad = [(rt::RTA_DST, vec![1, 2, 3])];
        assert_eq!(parse_route(&route(AF_INET, 24, 1, &bad), AF_INET), None);
        assert!(nexthop_devices(&[1, 0, 0, 0, 0, 0, 0, 0]).is_empty());
        assert!(nexthop_devices(&[200, 0, 0, 0, 5, 0, 0, 0]).is_empty());
    }

    #[test]
    fn route_messages() {
        let spec = RouteSpec {
            dst: "192.0.2.10".parse().unwrap(),
            dst_len: 32,
            oif: 4,
            protocol: 112,
        };
        let b = route_msg(&spec);
        assert_eq!(
            &b[..8],
            &[AF_INET, 32, 0, 0, rt::TABLE_MAIN, 112, rt::SCOPE_LINK, 1]
        );
        let a: Vec<_> = attrs(&b[RTMSG_LEN..]).collect();
        assert_eq!(
            a,
            [
                (rt::RTA_DST, &[192, 0, 2, 10][..]),
                (rt::RTA_OIF, &4u32.to_ne_bytes()[..])
            ]
        );
        let v6 = route_msg(&RouteSpec {
            dst: "2001:db8::".parse().unwrap(),
            dst_len: 64,
            ..spec
        });
        assert_eq!(
            &v6[..8],
            &[
                AF_INET6,
                64,
                0,
                0,
                rt::TABLE_MAIN,
                112,
                rt::SCOPE_UNIVERSE,
                1
            ]
        );
    }
}
