//! Attribute numbers and flags that neli does not define (from `<linux/if_link.h>`,
//! `<linux/if_bridge.h>`, `<linux/netlink.h>` and `<linux/rtnetlink.h>`).

/// `NLA_F_NESTED`: set on attributes whose payload is a list of attributes.
pub const NLA_F_NESTED: u16 = 1 << 15;
/// `NLA_F_NET_BYTEORDER`.
pub const NLA_F_NET_BYTEORDER: u16 = 1 << 14;
/// Mask that strips both flag bits from an attribute type.
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

/// `AF_BRIDGE`, the family of bridge-port (`ndo_bridge_setlink`) messages.
pub const AF_BRIDGE: u8 = 7;

/// `IFLA_EXT_MASK` and the filter bit that leaves the statistics out of a link reply.
pub const IFLA_EXT_MASK: u16 = 29;
pub const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;

/// `IFLA_TUN_*`: nested in `IFLA_LINKINFO` / `IFLA_INFO_DATA` of a link of kind `tun`.
pub mod tun {
    pub const OWNER: u16 = 1;
    pub const GROUP: u16 = 2;
    pub const TYPE: u16 = 3;
    pub const PERSIST: u16 = 6;
    /// Values of `IFLA_TUN_TYPE`.
    pub const IFF_TUN: u8 = 0x0001;
    pub const IFF_TAP: u8 = 0x0002;
}

/// `IFLA_BR_*`: nested in `IFLA_LINKINFO` / `IFLA_INFO_DATA` of a link of kind `bridge`.
pub mod br {
    pub const FORWARD_DELAY: u16 = 1;
    pub const STP_STATE: u16 = 5;
    pub const VLAN_FILTERING: u16 = 7;
    pub const NF_CALL_IPTABLES: u16 = 36;
    /// Only reported by kernels built with `CONFIG_BRIDGE_VLAN_FILTERING`.
    pub const VLAN_DEFAULT_PVID: u16 = 39;
}

/// `IFLA_BRPORT_*`: nested in `IFLA_PROTINFO` of an `AF_BRIDGE` message.
pub mod brport {
    pub const MODE: u16 = 4; // hairpin
    pub const LEARNING: u16 = 8;
    pub const UNICAST_FLOOD: u16 = 9;
    pub const ISOLATED: u16 = 33;
}

/// `IFLA_BRIDGE_*`: nested in `IFLA_AF_SPEC` of an `AF_BRIDGE` message.
pub mod bridge_af {
    pub const FLAGS: u16 = 0;
    pub const VLAN_INFO: u16 = 2;
    /// `BRIDGE_FLAGS_SELF`
    pub const FLAGS_SELF: u16 = 2;
    /// `BRIDGE_VLAN_INFO_*` flags of `struct bridge_vlan_info`.
    pub const VLAN_INFO_PVID: u16 = 1 << 1;
    pub const VLAN_INFO_UNTAGGED: u16 = 1 << 2;
    pub const VLAN_INFO_RANGE_BEGIN: u16 = 1 << 3;
    pub const VLAN_INFO_RANGE_END: u16 = 1 << 4;
    /// `RTEXT_FILTER_BRVLAN`: ask for the port's VLANs in a get-link reply.
    pub const RTEXT_FILTER_BRVLAN: u32 = 1 << 1;
}
