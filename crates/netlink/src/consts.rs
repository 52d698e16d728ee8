//! Numbers of the kernel's netlink ABI, each from the UAPI header named in its module (neli's own
//! enums cover only part of them). They are part of the kernel's stable ABI: the values never change.

/// `<linux/netlink.h>`: message types, header flags and attribute flag bits.
pub mod nl {
    /// `NLMSG_HDRLEN`: the aligned size of `struct nlmsghdr`.
    pub const HDRLEN: usize = 16;
    /// `NLMSG_ERROR`: an error, or with error code 0 an acknowledgement.
    pub const MSG_ERROR: u16 = 2;
    /// `NLMSG_DONE`: the end of a dump.
    pub const MSG_DONE: u16 = 3;
    /// `NLM_F_MULTI`: one part of a multi-part reply.
    pub const F_MULTI: u16 = 0x2;
    /// `NLM_F_CAPPED` (in an `NLMSG_ERROR`): only the request's header was echoed.
    pub const F_CAPPED: u16 = 0x100;
    /// `NLM_F_ACK_TLVS` (in an `NLMSG_ERROR`): extended-ack attributes follow the echo.
    pub const F_ACK_TLVS: u16 = 0x200;
    /// `NLMSGERR_ATTR_MSG`: the extended ack's text.
    pub const ERR_ATTR_MSG: u16 = 1;
    /// `NLA_F_NESTED`: set on attributes whose payload is a list of attributes.
    pub const NLA_F_NESTED: u16 = 1 << 15;
    /// `NLA_F_NET_BYTEORDER`.
    pub const NLA_F_NET_BYTEORDER: u16 = 1 << 14;
    /// Strips both flag bits from an attribute type (`NLA_TYPE_MASK`).
    pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);
}

/// `<linux/socket.h>`: `AF_BRIDGE`, the family of bridge-port (`ndo_bridge_setlink`) messages.
pub const AF_BRIDGE: u8 = 7;

/// `<net/if.h>`: the link flags we read and set.
pub const IFF_UP: u32 = 0x1;
pub const IFF_LOOPBACK: u32 = 0x8;

/// `<linux/if_link.h>`, `<linux/rtnetlink.h>`: link attributes (`IFLA_*`).
pub mod ifla {
    pub const ADDRESS: u16 = 1;
    pub const IFNAME: u16 = 3;
    pub const MTU: u16 = 4;
    pub const MASTER: u16 = 10;
    pub const PROTINFO: u16 = 12;
    pub const LINKINFO: u16 = 18;
    pub const AF_SPEC: u16 = 26;
    /// `IFLA_EXT_MASK`, and its filter bits (`RTEXT_FILTER_*`).
    pub const EXT_MASK: u16 = 29;
    pub const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
    /// `IFLA_MAX_MTU` (since Linux 4.19).
    pub const MAX_MTU: u16 = 51;
    /// `IFLA_INFO_*`, nested in `IFLA_LINKINFO`.
    pub const INFO_KIND: u16 = 1;
    pub const INFO_DATA: u16 = 2;
    pub const INFO_SLAVE_KIND: u16 = 4;
    pub const INFO_SLAVE_DATA: u16 = 5;
}

/// `<linux/if_link.h>` `IFLA_INET_*` (in `IFLA_AF_SPEC`, under `AF_INET`) and `<linux/ip.h>`
/// `IPV4_DEVCONF_*`: the 1-based setting numbers, which are the attribute types in
/// `IFLA_INET_CONF` (and, minus one, the indexes of the `u32` array the kernel reports).
pub mod inet {
    /// The attribute type of the IPv4 settings in `IFLA_AF_SPEC`: the address family.
    pub const AF_INET: u16 = super::AF_INET as u16;
    pub const IFLA_INET_CONF: u16 = 1;
    pub const DEVCONF_PROXY_ARP: u16 = 3;
}

/// `<linux/rtnetlink.h>`: route messages.
pub mod rt {
    pub const TABLE_MAIN: u8 = 254;
    pub const RTN_UNICAST: u8 = 1;
    pub const SCOPE_UNIVERSE: u8 = 0;
    pub const SCOPE_LINK: u8 = 253;
    pub const RTA_DST: u16 = 1;
    pub const RTA_OIF: u16 = 4;
    pub const RTA_PRIORITY: u16 = 6;
    pub const RTA_MULTIPATH: u16 = 9;
    pub const RTA_TABLE: u16 = 15;
}

/// `<linux/if_addr.h>`: `IFA_LOCAL`, `IFA_ADDRESS`, and `IFA_F_NODAD`.
pub mod ifa {
    pub const ADDRESS: u16 = 1;
    pub const LOCAL: u16 = 2;
    pub const F_NODAD: u8 = 0x02;
}

/// `AF_INET`, `AF_INET6`.
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

/// `<linux/if_link.h>` `IFLA_TUN_*`: in `IFLA_INFO_DATA` of a link of kind `tun`; and the tun
/// type values of `<linux/if_tun.h>`.
pub mod tun {
    pub const OWNER: u16 = 1;
    pub const GROUP: u16 = 2;
    pub const TYPE: u16 = 3;
    pub const PERSIST: u16 = 6;
    /// `IFF_TAP`, the value of `IFLA_TUN_TYPE` for a tap.
    pub const IFF_TAP: u8 = 0x0002;
}

/// `<linux/if_link.h>` `IFLA_BR_*`: in `IFLA_INFO_DATA` of a link of kind `bridge`.
pub mod br {
    pub const FORWARD_DELAY: u16 = 1;
    pub const STP_STATE: u16 = 5;
    pub const VLAN_FILTERING: u16 = 7;
    pub const NF_CALL_IPTABLES: u16 = 36;
    /// Only reported by kernels built with `CONFIG_BRIDGE_VLAN_FILTERING`.
    pub const VLAN_DEFAULT_PVID: u16 = 39;
}

/// `<linux/if_link.h>` `IFLA_BRPORT_*`: nested in `IFLA_PROTINFO` of an `AF_BRIDGE` message, and
/// in `IFLA_INFO_SLAVE_DATA` of a bridge port's link reply.
pub mod brport {
    /// Hairpin mode.
    pub const MODE: u16 = 4;
    pub const LEARNING: u16 = 8;
    pub const UNICAST_FLOOD: u16 = 9;
    pub const ISOLATED: u16 = 33;
}

/// `<linux/if_bridge.h>`: `IFLA_BRIDGE_*` (nested in `IFLA_AF_SPEC` of an `AF_BRIDGE` message),
/// the flags of `struct bridge_vlan_info`, and the `RTM_GETVLAN` dump (`struct br_vlan_msg`,
/// `BRIDGE_VLANDB_*`, since Linux 5.8).
pub mod bridge {
    pub const VLAN_INFO: u16 = 2;
    pub const VLAN_INFO_PVID: u16 = 1 << 1;
    pub const VLAN_INFO_UNTAGGED: u16 = 1 << 2;
    pub const VLAN_INFO_RANGE_BEGIN: u16 = 1 << 3;
    pub const VLAN_INFO_RANGE_END: u16 = 1 << 4;
    /// `RTM_GETVLAN` of `<linux/rtnetlink.h>` (the replies are `RTM_NEWVLAN`, 112).
    pub const RTM_GETVLAN: u16 = 114;
    /// `BRIDGE_VLANDB_ENTRY` and its children.
    pub const VLANDB_ENTRY: u16 = 1;
    pub const VLANDB_ENTRY_INFO: u16 = 1;
    pub const VLANDB_ENTRY_RANGE: u16 = 2;
}
