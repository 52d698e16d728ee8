//! Bridge state as iproute2's `bridge -j` reports it: port state, port VLANs, forwarding
//! database. Tests read the kernel's answer with these, never with the code under test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{iproute2, tool, try_iproute2};

/// Path of iproute2's `bridge` program.
pub fn bridge_path() -> &'static Path {
    static BRIDGE: OnceLock<PathBuf> = OnceLock::new();
    BRIDGE.get_or_init(|| tool("bridge", "iproute2"))
}

/// Runs `bridge ARGS` in the test namespace and returns its output, whatever its exit status.
pub fn try_bridge(args: &[&str]) -> Output {
    try_iproute2("bridge", bridge_path(), args)
}

/// Runs `bridge ARGS` in the test namespace; panics with its stderr if it fails. Returns stdout.
pub fn bridge(args: &[&str]) -> String {
    iproute2("bridge", bridge_path(), args)
}

fn json(args: &[&str]) -> Value {
    let text = bridge(args);
    if text.trim().is_empty() {
        return Value::Array(Vec::new());
    }
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("cannot parse `bridge {}`: {e}: {text}", args.join(" ")))
}

/// The STP state of bridge port `dev` (`disabled`, `listening`, `learning`, `forwarding`,
/// `blocking`), or `None` if `dev` is not a bridge port.
pub fn port_state(dev: &str) -> Option<String> {
    json(&["-j", "link", "show", "dev", dev])
        .as_array()?
        .iter()
        .find(|p| p.get("ifname").and_then(Value::as_str) == Some(dev))?
        .get("state")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Waits until every port in `ports` is `forwarding` ([`port_state`]); panics, naming the port
/// and its state, if one is not within `timeout` (counted for all together).
pub fn wait_forwarding(ports: &[&str], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    for port in ports {
        while port_state(port).as_deref() != Some("forwarding") {
            assert!(
                Instant::now() < deadline,
                "port {port} is not forwarding after {timeout:?}: {:?}",
                port_state(port)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One VLAN of a bridge port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortVlan {
    pub vid: u16,
    /// The port's PVID: untagged frames entering the port belong to this VLAN.
    pub pvid: bool,
    /// Frames of this VLAN leave the port untagged.
    pub untagged: bool,
}

/// The VLANs of port `dev` from `bridge -j vlan show dev DEV`, one entry per VLAN id (ranges
/// expanded), sorted by id. Empty when the port has none.
pub fn port_vlans(dev: &str) -> Vec<PortVlan> {
    let v = json(&["-j", "vlan", "show", "dev", dev]);
    let mut out: BTreeMap<u16, PortVlan> = BTreeMap::new();
    for port in v.as_array().map(Vec::as_slice).unwrap_or_default() {
        if port.get("ifname").and_then(Value::as_str) != Some(dev) {
            continue;
        }
        for entry in port
            .get("vlans")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let num = |key: &str| {
                entry
                    .get(key)
                    .and_then(Value::as_u64)
                    .and_then(|n| u16::try_from(n).ok())
            };
            let first = num("vlan").unwrap_or_else(|| panic!("no vlan id in {entry}"));
            let last = num("vlanEnd").unwrap_or(first);
            let flags: Vec<&str> = entry
                .get("flags")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for vid in first..=last {
                out.insert(
                    vid,
                    PortVlan {
                        vid,
                        pvid: flags.contains(&"PVID"),
                        untagged: flags.contains(&"Egress Untagged"),
                    },
                );
            }
        }
    }
    out.into_values().collect()
}

/// The MAC addresses the bridge learned on port `dev` (dynamic `bridge fdb` entries, not the
/// port's own permanent ones).
pub fn learned_macs(dev: &str) -> Vec<String> {
    json(&["-j", "fdb", "show", "dev", dev])
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|e| {
            let state = e.get("state").and_then(Value::as_str).unwrap_or("");
            e.get("master").is_some() && state != "permanent" && state != "static"
        })
        .filter_map(|e| e.get("mac").and_then(Value::as_str).map(str::to_owned))
        .collect()
}
