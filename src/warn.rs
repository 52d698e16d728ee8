//! Bridge settings that do not stop qemu-ifup but that commonly break the guest's network or
//! undo what the helper promises: worth a warning (stderr and syslog), never an error.

use std::io::Read;
use std::path::Path;

use ifup_netlink::Link;

/// The sysctl `br_netfilter` adds; it exists only while that module is loaded, and it is per
/// network namespace (read it from the namespace of the bridge).
pub const NF_CALL_IPTABLES_SYSCTL: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

/// `NET_ADDR_SET` of `<linux/netdevice.h>`: the address was set from user space.
const NET_ADDR_SET: u8 = 3;

/// What the warnings look at besides the bridge's link attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Host {
    /// `net.bridge.bridge-nf-call-iptables`: `None` when `br_netfilter` is not loaded (no bridged
    /// traffic goes through iptables then) or it cannot be read.
    pub nf_call_iptables: Option<bool>,
    /// The bridge's `addr_assign_type` (sysfs; not in rtnetlink): `None` when it cannot be read
    /// for this bridge (sysfs mounted for another network namespace, for one).
    pub addr_assign_type: Option<u8>,
}

impl Host {
    /// Read both for `bridge`, in the calling thread's network namespace.
    pub fn read(bridge: &Link) -> Host {
        Host {
            nf_call_iptables: read_sysctl_flag(Path::new(NF_CALL_IPTABLES_SYSCTL)),
            addr_assign_type: read_addr_assign_type(bridge),
        }
    }
}

fn read_small(path: &Path) -> Option<String> {
    // These files hold one short line: one read into a small buffer.
    let mut buf = [0u8; 64];
    let n = std::fs::File::open(path).ok()?.read(&mut buf).ok()?;
    Some(std::str::from_utf8(&buf[..n]).ok()?.trim().to_owned())
}

fn read_sysctl_flag(path: &Path) -> Option<bool> {
    match read_small(path)?.as_str() {
        "0" => Some(false),
        "" => None,
        _ => Some(true),
    }
}

/// `/sys/class/net/BRIDGE/addr_assign_type`, if that sysfs entry is this bridge: sysfs shows the
/// network namespace it was mounted in, so its ifindex must match before its value counts.
fn read_addr_assign_type(bridge: &Link) -> Option<u8> {
    let dir = Path::new("/sys/class/net").join(&bridge.name);
    let index: u32 = read_small(&dir.join("ifindex"))?.parse().ok()?;
    if index != bridge.index {
        return None;
    }
    read_small(&dir.join("addr_assign_type"))?.parse().ok()
}

/// Warnings about `bridge`, one line each, without the program prefix (the caller adds it and
/// the tap and bridge names, as for errors):
/// - STP with a forward delay: a new port passes no traffic for two forward delays (listening,
///   then learning; 30 s with the default 15 s), long enough for the guest's DHCP to give up;
/// - `nf_call_iptables` (the sysctl `bridge-nf-call-iptables`, or the bridge's own option, which
///   counts only while `br_netfilter` is loaded): the host's iptables rules then filter the
///   guests' bridged traffic;
/// - a bridge MAC address the admin did not set: the bridge then takes the lowest MAC of its
///   ports, which can be a tap's, and the tap's owner can change that (`SIOCSIFHWADDR` on the
///   tap needs no capability), and with it the bridge's.
pub fn bridge_warnings(bridge: &Link, host: Host) -> Vec<String> {
    let mut out = Vec::new();
    let Some(info) = bridge.bridge else {
        return out;
    };
    let name = &bridge.name;
    if info.stp && info.forward_delay > 0 {
        // The kernel reports clock_t (1/100 s).
        let delay = info.forward_delay.div_ceil(100);
        let wait = 2 * delay;
        let mut w = format!(
            "the bridge runs STP with a forward delay of {delay} s: a new port forwards only \
             after {wait} s (listening, then learning)"
        );
        if wait >= 10 {
            w.push_str(", long enough for the guest's DHCP client to give up");
        }
        w.push_str(&format!(
            "; on a bridge that only carries VMs, turn STP off (`ip link set {name} type bridge \
             stp_state 0`)"
        ));
        if delay > 2 {
            w.push_str(" or shorten the delay (`forward_delay 200` is 2 s)");
        }
        out.push(w);
    }
    let filtered = match host.nf_call_iptables {
        None => None,
        Some(true) => Some("net.bridge.bridge-nf-call-iptables is 1"),
        Some(false) if info.nf_call_iptables => Some("the bridge's nf_call_iptables option is on"),
        Some(false) => None,
    };
    if let Some(why) = filtered {
        out.push(format!(
            "{why}, so the host's iptables rules also filter the guests' bridged traffic (a \
             common cause of guests that get no DHCP lease or cannot reach each other); unless \
             that is intended, run `sysctl -w net.bridge.bridge-nf-call-iptables=0` (it is per \
             network namespace) and `ip link set {name} type bridge nf_call_iptables 0`"
        ));
    }
    if host.addr_assign_type.is_some_and(|t| t != NET_ADDR_SET) {
        out.push(format!(
            "the bridge's MAC address was not set by the admin, so it follows the lowest MAC of \
             its ports: a tap's, while taps are its only ports, and a tap's owner can change \
             that; pin it (`ip link set {name} address {mac}`, or the bridge's MAC setting of \
             your network manager, see the guide)",
            mac = bridge
                .address
                .as_deref()
                .map_or_else(|| "XX:XX:XX:XX:XX:XX".to_owned(), crate::plan::fmt_mac)
        ));
    }
    out
}

/// `net.ipv4.ip_forward` and `net.ipv6.conf.all.forwarding` of the calling thread's network
/// namespace (`None` when unreadable).
pub fn read_forwarding() -> (Option<bool>, Option<bool>) {
    (
        read_sysctl_flag(Path::new("/proc/sys/net/ipv4/ip_forward")),
        read_sysctl_flag(Path::new("/proc/sys/net/ipv6/conf/all/forwarding")),
    )
}

/// Warnings for a routed tap whose destinations are IPv4 (`ipv4`) and/or IPv6 (`ipv6`), when the
/// host does not forward that family (`forwarding`: the sysctls, `Some(false)` = off): its
/// guest then reaches the host but nothing beyond.
pub fn forwarding_warnings(
    ipv4: bool,
    ipv6: bool,
    forwarding: (Option<bool>, Option<bool>),
) -> Vec<String> {
    let mut out = Vec::new();
    for (used, on, sysctl) in [
        (ipv4, forwarding.0, "net.ipv4.ip_forward"),
        (ipv6, forwarding.1, "net.ipv6.conf.all.forwarding"),
    ] {
        if used && on == Some(false) {
            out.push(format!(
                "{sysctl} is 0, so the host does not route the guest's traffic beyond itself: run \
                 `sysctl -w {sysctl}=1`, and put `{sysctl} = 1` in /etc/sysctl.d/ to keep it"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ifup_netlink::BridgeInfo;

    fn bridge(info: BridgeInfo) -> Link {
        Link {
            index: 2,
            name: "br0".into(),
            kind: Some("bridge".into()),
            mtu: 1500,
            max_mtu: None,
            master: None,
            up: true,
            loopback: false,
            address: Some(vec![2, 0, 0, 0, 0, 1]),
            tun: None,
            bridge: Some(info),
            port: None,
            proxy_arp: None,
        }
    }

    fn host(nf_call_iptables: Option<bool>) -> Host {
        Host {
            nf_call_iptables,
            addr_assign_type: Some(NET_ADDR_SET),
        }
    }

    #[test]
    fn bridge_mac_not_set_by_the_admin_warns() {
        let b = bridge(BridgeInfo::default());
        for (t, warns) in [(0, true), (1, true), (2, true), (3, false)] {
            let w = bridge_warnings(
                &b,
                Host {
                    nf_call_iptables: None,
                    addr_assign_type: Some(t),
                },
            );
            assert_eq!(w.len(), usize::from(warns), "{t}: {w:?}");
            if warns {
                assert!(
                    w[0].contains("ip link set br0 address 02:00:00:00:00:01"),
                    "{w:?}"
                );
            }
        }
        // Unknown (sysfs of another namespace): no warning.
        assert!(bridge_warnings(&b, Host::default()).is_empty());
    }

    #[test]
    fn quiet_bridge_no_warnings() {
        let b = bridge(BridgeInfo {
            forward_delay: 1500, // the kernel default, irrelevant without STP
            ..BridgeInfo::default()
        });
        assert!(bridge_warnings(&b, host(None)).is_empty());
        assert!(bridge_warnings(&b, host(Some(false))).is_empty());
    }

    #[test]
    fn stp_with_forward_delay_warns() {
        let b = bridge(BridgeInfo {
            stp: true,
            forward_delay: 1500,
            ..BridgeInfo::default()
        });
        let w = bridge_warnings(&b, host(None));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("forward delay of 15 s"), "{w:?}");
        assert!(w[0].contains("after 30 s"), "{w:?}");
        assert!(
            w[0].contains("ip link set br0 type bridge stp_state 0"),
            "{w:?}"
        );
        // STP with no delay: nothing to wait for.
        let b = bridge(BridgeInfo {
            stp: true,
            forward_delay: 0,
            ..BridgeInfo::default()
        });
        assert!(bridge_warnings(&b, host(None)).is_empty());
    }

    #[test]
    fn nf_call_iptables_warns_only_with_br_netfilter() {
        let plain = bridge(BridgeInfo::default());
        let w = bridge_warnings(&plain, host(Some(true)));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("bridge-nf-call-iptables is 1"), "{w:?}");
        assert!(w[0].contains("br0"), "{w:?}");
        let own = bridge(BridgeInfo {
            nf_call_iptables: true,
            ..BridgeInfo::default()
        });
        let w = bridge_warnings(&own, host(Some(false)));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("nf_call_iptables option"), "{w:?}");
        // br_netfilter not loaded: the bridge option has no effect.
        assert!(bridge_warnings(&own, host(None)).is_empty());
    }

    #[test]
    fn both_warnings() {
        let b = bridge(BridgeInfo {
            stp: true,
            forward_delay: 200,
            ..BridgeInfo::default()
        });
        let w = bridge_warnings(&b, host(Some(true)));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("forward delay of 2 s"), "{w:?}");
        // 2 s: neither the DHCP claim nor the advice to shorten it to 2 s.
        assert!(!w[0].contains("DHCP"), "{w:?}");
        assert!(!w[0].contains("forward_delay 200"), "{w:?}");
        assert!(w[0].contains("stp_state 0"), "{w:?}");
    }

    #[test]
    fn forwarding_off_warns_for_the_families_in_use() {
        let off = (Some(false), Some(false));
        assert_eq!(forwarding_warnings(true, false, off).len(), 1);
        assert!(
            forwarding_warnings(true, false, off)[0].contains("sysctl -w net.ipv4.ip_forward=1")
        );
        assert_eq!(forwarding_warnings(true, true, off).len(), 2);
        assert!(forwarding_warnings(false, true, off)[0].contains("net.ipv6.conf.all.forwarding"));
        assert!(forwarding_warnings(true, true, (Some(true), Some(true))).is_empty());
        // Unreadable: no warning.
        assert!(forwarding_warnings(true, true, (None, None)).is_empty());
    }

    #[test]
    fn sysctl_reader() {
        let dir = std::env::temp_dir().join(format!("qemu-ifup-warn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("flag");
        std::fs::write(&f, "1\n").unwrap();
        assert_eq!(read_sysctl_flag(&f), Some(true));
        std::fs::write(&f, "0\n").unwrap();
        assert_eq!(read_sysctl_flag(&f), Some(false));
        std::fs::remove_file(&f).unwrap();
        assert_eq!(read_sysctl_flag(&f), None);
        let _ = std::fs::remove_dir(&dir);
    }
}
