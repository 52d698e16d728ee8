//! Routes: the devices of the default routes of the main table.

use neli::consts::rtnl::Rtm;

use crate::error::{NetlinkError, Op};
use crate::socket::{Socket, NLM_F_DUMP};
use crate::wire::{attrs, u32_of};

/// `AF_INET`, `AF_INET6`.
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// `RT_TABLE_MAIN`, `RTN_UNICAST` and the `RTA_*` attributes read here, from
/// `<linux/rtnetlink.h>`.
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
const RTA_OIF: u16 = 4;
const RTA_PRIORITY: u16 = 6;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
/// The size of `struct rtmsg`, and of `struct rtnexthop` (`RTNH_LENGTH(0)`).
const RTMSG_LEN: usize = 12;
const RTNH_LEN: usize = 8;

/// A default route's output devices: one, or one per next hop of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    /// `true` for IPv6.
    pub ipv6: bool,
    /// `RTA_PRIORITY`, the metric (0 when absent).
    pub metric: u32,
    /// ifindexes, in the kernel's next-hop order.
    pub devices: Vec<u32>,
}

impl Socket {
    /// The unicast default routes of the main table with their devices: the IPv4 ones, then the
    /// IPv6 ones, each family in the kernel's order (lowest metric first).
    pub fn default_routes(&mut self) -> Result<Vec<DefaultRoute>, NetlinkError> {
        let mut out = Vec::new();
        for family in [AF_INET, AF_INET6] {
            // With strict checking the kernel filters the dump to the main table itself.
            let mut body = rtmsg(family, 0, RT_TABLE_MAIN as u8);
            crate::wire::push_attr(&mut body, RTA_TABLE, &RT_TABLE_MAIN.to_ne_bytes());
            let replies = match self.request(Op::GetRoute, Rtm::Getroute.into(), NLM_F_DUMP, &body)
            {
                Ok(r) => r,
                // Strict dumps of a table that does not exist (no route at all) end in ENOENT.
                Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            out.extend(replies.iter().filter_map(|p| parse_default(p, family)));
        }
        Ok(out)
    }
}

/// `struct rtmsg`: family, destination length, table; the rest zero (any).
fn rtmsg(family: u8, dst_len: u8, table: u8) -> Vec<u8> {
    let mut b = vec![0u8; RTMSG_LEN];
    b[0] = family;
    b[1] = dst_len;
    b[4] = table;
    b
}

/// The route in `payload` if it is a unicast default route of the main table with a device.
fn parse_default(payload: &[u8], family: u8) -> Option<DefaultRoute> {
    let head = payload.get(..RTMSG_LEN)?;
    let (fam, dst_len, table, ty) = (head[0], head[1], head[4], head[7]);
    if fam != family || dst_len != 0 || ty != RTN_UNICAST {
        return None;
    }
    let mut table = u32::from(table);
    let mut metric = 0;
    let mut devices = Vec::new();
    for (ty, p) in attrs(&payload[RTMSG_LEN..]) {
        match ty {
            RTA_TABLE => table = u32_of(p).unwrap_or(table),
            RTA_OIF => devices.extend(u32_of(p)),
            RTA_MULTIPATH => devices.extend(nexthop_devices(p)),
            RTA_PRIORITY => metric = u32_of(p).unwrap_or(0),
            _ => {}
        }
    }
    (table == RT_TABLE_MAIN && !devices.is_empty()).then_some(DefaultRoute {
        ipv6: family == AF_INET6,
        metric,
        devices,
    })
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
    use crate::wire::push_attr;

    fn route(family: u8, dst_len: u8, ty: u8, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = rtmsg(family, dst_len, RT_TABLE_MAIN as u8);
        b[7] = ty;
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
    fn single_and_multipath_defaults() {
        let r = route(
            AF_INET,
            0,
            RTN_UNICAST,
            &[
                (RTA_OIF, 5u32.to_ne_bytes().to_vec()),
                (RTA_PRIORITY, 100u32.to_ne_bytes().to_vec()),
            ],
        );
        assert_eq!(
            parse_default(&r, AF_INET),
            Some(DefaultRoute {
                ipv6: false,
                metric: 100,
                devices: vec![5]
            })
        );
        let mp = [nexthop(7), nexthop(3)].concat();
        let r = route(AF_INET, 0, RTN_UNICAST, &[(RTA_MULTIPATH, mp)]);
        assert_eq!(parse_default(&r, AF_INET).unwrap().devices, [7, 3]);
    }

    #[test]
    fn not_default_routes() {
        let oif = [(RTA_OIF, 5u32.to_ne_bytes().to_vec())];
        // A prefix, a blackhole (type 6), another family, another table, no device.
        assert_eq!(
            parse_default(&route(AF_INET, 24, RTN_UNICAST, &oif), AF_INET),
            None
        );
        assert_eq!(parse_default(&route(AF_INET, 0, 6, &oif), AF_INET), None);
        assert_eq!(
            parse_default(&route(AF_INET6, 0, RTN_UNICAST, &oif), AF_INET),
            None
        );
        let mut other = oif.to_vec();
        other.push((RTA_TABLE, 100u32.to_ne_bytes().to_vec()));
        assert_eq!(
            parse_default(&route(AF_INET, 0, RTN_UNICAST, &other), AF_INET),
            None
        );
        assert_eq!(
            parse_default(&route(AF_INET, 0, RTN_UNICAST, &[]), AF_INET),
            None
        );
        // Malformed next hops end the list.
        assert!(nexthop_devices(&[1, 0, 0, 0, 0, 0, 0, 0]).is_empty());
        assert!(nexthop_devices(&[200, 0, 0, 0, 5, 0, 0, 0]).is_empty());
        assert_eq!(parse_default(&[0; 5], AF_INET), None);
    }
}
