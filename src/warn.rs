//! Bridge settings that do not stop qemu-ifup but that commonly break the guest's network:
//! worth a warning (stderr and syslog), never an error.

use std::io::Read;
use std::path::Path;

use ifup_netlink::Link;

/// The sysctl `br_netfilter` adds; it exists only while that module is loaded, and it is per
/// network namespace (read it from the namespace of the bridge).
pub const NF_CALL_IPTABLES_SYSCTL: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

/// `net.bridge.bridge-nf-call-iptables` of the calling thread's network namespace: `None` when
/// `br_netfilter` is not loaded (no bridged traffic goes through iptables then) or the file
/// cannot be read.
pub fn read_nf_call_iptables() -> Option<bool> {
    read_sysctl_flag(Path::new(NF_CALL_IPTABLES_SYSCTL))
}

fn read_sysctl_flag(path: &Path) -> Option<bool> {
    // A flag sysctl is one digit and a newline: one read into a small buffer.
    let mut buf = [0u8; 8];
    let n = std::fs::File::open(path).ok()?.read(&mut buf).ok()?;
    match std::str::from_utf8(&buf[..n]).ok()?.trim() {
        "0" => Some(false),
        "" => None,
        _ => Some(true),
    }
}

/// Warnings about `bridge`, one line each, without the program prefix (the caller adds it and
/// the tap and bridge names, as for errors):
/// - STP with a forward delay: a new port passes no traffic for two forward delays (listening,
///   then learning; 30 s with the default 15 s), long enough for the guest's DHCP to give up;
/// - `nf_call_iptables` (the sysctl `bridge-nf-call-iptables`, or the bridge's own option, which
///   counts only while `br_netfilter` is loaded): the host's iptables rules then filter the
///   guests' bridged traffic.
pub fn bridge_warnings(bridge: &Link, nf_call_iptables: Option<bool>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(info) = bridge.bridge else {
        return out;
    };
    let name = &bridge.name;
    if info.stp && info.forward_delay > 0 {
        // The kernel reports clock_t (1/100 s).
        let delay = info.forward_delay.div_ceil(100);
        out.push(format!(
            "the bridge runs STP with a forward delay of {delay} s: the new port forwards only \
             after {} s (listening, then learning), long enough for the guest's DHCP to time \
             out; on a bridge that only carries VMs, turn STP off (`ip link set {name} type \
             bridge stp_state 0`) or shorten the delay (`forward_delay 200` is 2 s)",
            2 * delay
        ));
    }
    let filtered = match nf_call_iptables {
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
            master: None,
            up: true,
            loopback: false,
            address: None,
            tun: None,
            bridge: Some(info),
        }
    }

    #[test]
    fn quiet_bridge_no_warnings() {
        let b = bridge(BridgeInfo {
            forward_delay: 1500, // the kernel default, irrelevant without STP
            ..BridgeInfo::default()
        });
        assert!(bridge_warnings(&b, None).is_empty());
        assert!(bridge_warnings(&b, Some(false)).is_empty());
    }

    #[test]
    fn stp_with_forward_delay_warns() {
        let b = bridge(BridgeInfo {
            stp: true,
            forward_delay: 1500,
            ..BridgeInfo::default()
        });
        let w = bridge_warnings(&b, None);
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
        assert!(bridge_warnings(&b, None).is_empty());
    }

    #[test]
    fn nf_call_iptables_warns_only_with_br_netfilter() {
        let plain = bridge(BridgeInfo::default());
        let w = bridge_warnings(&plain, Some(true));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("bridge-nf-call-iptables is 1"), "{w:?}");
        assert!(w[0].contains("br0"), "{w:?}");
        let own = bridge(BridgeInfo {
            nf_call_iptables: true,
            ..BridgeInfo::default()
        });
        let w = bridge_warnings(&own, Some(false));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("nf_call_iptables option"), "{w:?}");
        // br_netfilter not loaded: the bridge option has no effect.
        assert!(bridge_warnings(&own, None).is_empty());
    }

    #[test]
    fn both_warnings() {
        let b = bridge(BridgeInfo {
            stp: true,
            forward_delay: 200,
            ..BridgeInfo::default()
        });
        let w = bridge_warnings(&b, Some(true));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("forward delay of 2 s"), "{w:?}");
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
