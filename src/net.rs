//! The handful of rtnetlink operations the flow uses, behind a trait: the real socket in the
//! binaries, a recording fake (below, tests only) for the decision and flow tests that run without
//! root. The fake never replaces the real-kernel tests in `tests/`.

use std::net::IpAddr;

use ifup_netlink::{
    BridgePort, Link, LinkChange, NetlinkError, Route, RouteSpec, Socket, VlanEntry,
};
use ifup_tun::{NewTap, TunError};

/// What the flow asks of the kernel.
pub trait Net {
    /// A link by name (the kernel also matches alternative names). `None`: no such link.
    fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetlinkError>;
    /// A link by ifindex. `None`: no such link.
    fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, NetlinkError>;
    /// The main table's routes of one family, in the kernel's order (lowest metric first).
    fn main_routes(&mut self, ipv6: bool) -> Result<Vec<Route>, NetlinkError>;
    /// The VLANs of a bridge port.
    fn port_vlans(&mut self, index: u32) -> Result<Vec<VlanEntry>, NetlinkError>;
    /// One `RTM_SETLINK`.
    fn set_link(&mut self, index: u32, change: &LinkChange) -> Result<(), NetlinkError>;
    /// Bridge-port flags and VLANs.
    fn set_bridge_port(&mut self, index: u32, port: &BridgePort) -> Result<(), NetlinkError>;
    /// A new, non-persistent tap (bridge-helper mode), through `/dev/net/tun`.
    fn create_tap(&mut self, vnet_hdr: bool) -> Result<NewTap, TunError>;
    /// The main table's routes through device `oif` added by `protocol`, both families.
    fn routes_by(&mut self, oif: u32, protocol: u8) -> Result<Vec<Route>, NetlinkError>;
    /// Add a route (`EEXIST` if it is there).
    fn add_route(&mut self, spec: &RouteSpec) -> Result<(), NetlinkError>;
    /// Remove a route.
    fn del_route(&mut self, spec: &RouteSpec) -> Result<(), NetlinkError>;
    /// Create a bridge, STP off, forward delay 0, with `mac`, down (`EEXIST` if the name is
    /// taken).
    fn new_bridge(&mut self, name: &str, mac: [u8; 6]) -> Result<(), NetlinkError>;
    /// Add an address to a link (`EEXIST` if it is there).
    fn add_address(&mut self, index: u32, addr: IpAddr, len: u8) -> Result<(), NetlinkError>;
}

impl Net for Socket {
    fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        Socket::link_by_name(self, name)
    }

    fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, NetlinkError> {
        Socket::link_by_index(self, index)
    }

    fn main_routes(&mut self, ipv6: bool) -> Result<Vec<Route>, NetlinkError> {
        let family = if ipv6 {
            ifup_netlink::consts::AF_INET6
        } else {
            ifup_netlink::consts::AF_INET
        };
        Socket::routes(self, family, None, None)
    }

    fn port_vlans(&mut self, index: u32) -> Result<Vec<VlanEntry>, NetlinkError> {
        Socket::port_vlans(self, index)
    }

    fn set_link(&mut self, index: u32, change: &LinkChange) -> Result<(), NetlinkError> {
        Socket::set_link(self, index, change)
    }

    fn set_bridge_port(&mut self, index: u32, port: &BridgePort) -> Result<(), NetlinkError> {
        Socket::set_bridge_port(self, index, port)
    }

    fn create_tap(&mut self, vnet_hdr: bool) -> Result<NewTap, TunError> {
        ifup_tun::create_tap(vnet_hdr)
    }

    fn routes_by(&mut self, oif: u32, protocol: u8) -> Result<Vec<Route>, NetlinkError> {
        let mut out = Vec::new();
        for family in [
            ifup_netlink::consts::AF_INET,
            ifup_netlink::consts::AF_INET6,
        ] {
            out.extend(Socket::routes(self, family, Some(oif), Some(protocol))?);
        }
        Ok(out)
    }

    fn add_route(&mut self, spec: &RouteSpec) -> Result<(), NetlinkError> {
        Socket::add_route(self, spec)
    }

    fn del_route(&mut self, spec: &RouteSpec) -> Result<(), NetlinkError> {
        Socket::del_route(self, spec)
    }

    fn new_bridge(&mut self, name: &str, mac: [u8; 6]) -> Result<(), NetlinkError> {
        Socket::new_bridge(self, name, mac)
    }

    fn add_address(&mut self, index: u32, addr: IpAddr, len: u8) -> Result<(), NetlinkError> {
        Socket::add_address(self, index, addr, len)
    }
}

#[cfg(test)]
pub mod fake {
    //! A kernel made of plain data: links, the main routing table and port VLANs. Changes are applied
    //! to the data and recorded, one line per call; a chosen change can be made to fail.

    use super::*;
    use ifup_netlink::{Errno, PortFlags};

    #[derive(Debug, Default)]
    pub struct FakeNet {
        pub links: Vec<Link>,
        pub vlans: Vec<(u32, VlanEntry)>,
        /// Alternative names: (altname, ifindex).
        pub altnames: Vec<(String, u32)>,
        /// The main table's routes.
        pub table: Vec<Route>,
        /// Addresses added: (ifindex, address, prefix length).
        pub addresses: Vec<(u32, IpAddr, u8)>,
        /// Every change asked for, in order: `set_link IDX {..}` / `set_bridge_port IDX {..}`.
        pub calls: Vec<String>,
        /// Fail the changes whose (0-based) numbers these are, with these errnos.
        pub fail_changes: Vec<(usize, Errno)>,
        changes: usize,
    }

    impl FakeNet {
        pub fn new(links: Vec<Link>) -> FakeNet {
            FakeNet {
                links,
                ..FakeNet::default()
            }
        }

        pub fn link(&self, name: &str) -> &Link {
            self.links
                .iter()
                .find(|l| l.name == name)
                .unwrap_or_else(|| panic!("no link {name}"))
        }

        fn change(&mut self, what: String) -> Result<(), NetlinkError> {
            self.calls.push(what);
            let n = self.changes;
            self.changes += 1;
            match self.fail_changes.iter().find(|(at, _)| *at == n) {
                Some(&(_, errno)) => Err(NetlinkError::Kernel {
                    op: ifup_netlink::Op::SetLink,
                    errno,
                    ext_ack: None,
                }),
                None => Ok(()),
            }
        }

        fn by_index(&mut self, index: u32) -> Result<&mut Link, NetlinkError> {
            self.links
                .iter_mut()
                .find(|l| l.index == index)
                .ok_or(NetlinkError::Kernel {
                    op: ifup_netlink::Op::SetLink,
                    errno: Errno::ENODEV,
                    ext_ack: None,
                })
        }
    }

    fn kernel(errno: Errno) -> NetlinkError {
        NetlinkError::Kernel {
            op: ifup_netlink::Op::SetLink,
            errno,
            ext_ack: None,
        }
    }

    impl Net for FakeNet {
        fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
            let alt = self
                .altnames
                .iter()
                .find(|(a, _)| a == name)
                .map(|(_, i)| *i);
            Ok(self
                .links
                .iter()
                .find(|l| l.name == name || Some(l.index) == alt)
                .cloned())
        }

        fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, NetlinkError> {
            Ok(self.links.iter().find(|l| l.index == index).cloned())
        }

        fn main_routes(&mut self, ipv6: bool) -> Result<Vec<Route>, NetlinkError> {
            Ok(self
                .table
                .iter()
                .filter(|r| r.dst.is_ipv6() == ipv6)
                .cloned()
                .collect())
        }

        fn port_vlans(&mut self, index: u32) -> Result<Vec<VlanEntry>, NetlinkError> {
            Ok(self
                .vlans
                .iter()
                .filter(|(i, _)| *i == index)
                .map(|(_, v)| *v)
                .collect())
        }

        fn set_link(&mut self, index: u32, change: &LinkChange) -> Result<(), NetlinkError> {
            self.change(format!("set_link {index} {change:?}"))?;
            let masters: Vec<u32> = self.links.iter().map(|l| l.index).collect();
            let link = self.by_index(index)?;
            if let Some(mac) = change.address {
                link.address = Some(mac.to_vec());
            }
            if let Some(mtu) = change.mtu {
                link.mtu = mtu;
            }
            if let Some(up) = change.up {
                link.up = up;
            }
            if let Some(on) = change.proxy_arp {
                link.proxy_arp = Some(on);
            }
            if let Some(master) = change.master {
                if master != 0 && !masters.contains(&master) {
                    return Err(NetlinkError::Kernel {
                        op: ifup_netlink::Op::SetLink,
                        errno: Errno::EINVAL,
                        ext_ack: None,
                    });
                }
                link.master = (master != 0).then_some(master);
                link.port = (master != 0).then_some(PortFlags::NEW_PORT);
            }
            Ok(())
        }

        fn create_tap(&mut self, vnet_hdr: bool) -> Result<NewTap, TunError> {
            let index = self.links.iter().map(|l| l.index).max().unwrap_or(0) + 1;
            let name = format!(
                "tap{}",
                self.links
                    .iter()
                    .filter(|l| l.name.starts_with("tap"))
                    .count()
            );
            self.calls
                .push(format!("create_tap {name} vnet_hdr={vnet_hdr}"));
            self.links.push(Link {
                index,
                name: name.clone(),
                kind: Some("tun".into()),
                mtu: 1500,
                max_mtu: Some(65521),
                master: None,
                up: false,
                loopback: false,
                address: Some(vec![0x12, 0x34, 0x56, 0, 0, index as u8]),
                tun: Some(ifup_netlink::TunInfo {
                    tap: true,
                    owner: None,
                    group: None,
                    persist: false,
                }),
                bridge: None,
                port: None,
                proxy_arp: Some(false),
            });
            let fd = std::fs::File::open("/dev/null").map_err(|_| TunError::Open(Errno::EIO))?;
            Ok(NewTap {
                fd: fd.into(),
                name,
                vnet_hdr,
            })
        }

        fn routes_by(&mut self, oif: u32, protocol: u8) -> Result<Vec<Route>, NetlinkError> {
            Ok(self
                .table
                .iter()
                .filter(|r| r.devices.contains(&oif) && r.protocol == protocol)
                .cloned()
                .collect())
        }

        fn add_route(&mut self, spec: &RouteSpec) -> Result<(), NetlinkError> {
            self.change(format!("add_route {spec:?}"))?;
            if self
                .table
                .iter()
                .any(|r| r.dst == spec.dst && r.dst_len == spec.dst_len)
            {
                return Err(kernel(Errno::EEXIST));
            }
            self.table.push(Route {
                dst: spec.dst,
                dst_len: spec.dst_len,
                kind: 1,
                protocol: spec.protocol,
                metric: 0,
                devices: vec![spec.oif],
            });
            Ok(())
        }

        fn del_route(&mut self, spec: &RouteSpec) -> Result<(), NetlinkError> {
            self.change(format!("del_route {spec:?}"))?;
            let before = self.table.len();
            self.table.retain(|r| {
                !(r.dst == spec.dst && r.dst_len == spec.dst_len && r.devices == [spec.oif])
            });
            if self.table.len() == before {
                return Err(kernel(Errno::ESRCH));
            }
            Ok(())
        }

        fn new_bridge(&mut self, name: &str, mac: [u8; 6]) -> Result<(), NetlinkError> {
            self.change(format!("new_bridge {name}"))?;
            if self.links.iter().any(|l| l.name == name) {
                return Err(kernel(Errno::EEXIST));
            }
            let index = self.links.iter().map(|l| l.index).max().unwrap_or(0) + 1;
            self.links.push(Link {
                index,
                name: name.to_owned(),
                kind: Some("bridge".into()),
                mtu: 1500,
                max_mtu: Some(65535),
                master: None,
                up: false,
                loopback: false,
                address: Some(mac.to_vec()),
                tun: None,
                bridge: Some(ifup_netlink::BridgeInfo::default()),
                port: None,
                proxy_arp: Some(false),
            });
            Ok(())
        }

        fn add_address(&mut self, index: u32, addr: IpAddr, len: u8) -> Result<(), NetlinkError> {
            self.change(format!("add_address {index} {addr}/{len}"))?;
            if self.addresses.contains(&(index, addr, len)) {
                return Err(kernel(Errno::EEXIST));
            }
            self.addresses.push((index, addr, len));
            Ok(())
        }

        fn set_bridge_port(&mut self, index: u32, port: &BridgePort) -> Result<(), NetlinkError> {
            self.change(format!("set_bridge_port {index} {port:?}"))?;
            let link = self.by_index(index)?;
            let Some(flags) = link.port.as_mut() else {
                return Err(NetlinkError::Kernel {
                    op: ifup_netlink::Op::SetBridgePort,
                    errno: Errno::EOPNOTSUPP,
                    ext_ack: None,
                });
            };
            for (slot, v) in [
                (&mut flags.isolated, port.isolated),
                (&mut flags.hairpin, port.hairpin),
                (&mut flags.learning, port.learning),
                (&mut flags.flood, port.flood),
            ] {
                if let Some(v) = v {
                    *slot = v;
                }
            }
            self.vlans
                .retain(|(i, v)| *i != index || !port.del_vlans.iter().any(|d| d.first == v.first));
            for v in &port.add_vlans {
                self.vlans
                    .retain(|(i, e)| *i != index || e.first != v.first);
                self.vlans.push((index, *v));
            }
            Ok(())
        }
    }
}
