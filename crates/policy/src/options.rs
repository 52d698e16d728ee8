//! Per-port options (`mtu`, `vlan`, `tagged`, ...) and their parser.

use std::fmt;

use crate::error::LineError;

/// Smallest configurable MTU (the IPv4 minimum).
pub const MIN_MTU: u32 = 68;
/// Largest configurable MTU.
pub const MAX_MTU: u32 = 65535;
/// Smallest VLAN id.
pub const MIN_VLAN: u16 = 1;
/// Largest VLAN id (4095 is reserved).
pub const MAX_VLAN: u16 = 4094;

/// The tap's MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mtu {
    /// Follow the bridge's MTU.
    #[default]
    Auto,
    /// A fixed MTU, `MIN_MTU..=MAX_MTU`.
    Fixed(u32),
}

/// What to do with the tap's host-side MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TapMac {
    /// Make it start with `fe` so the bridge never takes the tap's address as its own.
    #[default]
    Fe,
    /// Leave it as it is.
    Keep,
}

/// An inclusive range of VLAN ids, `1 <= first <= last <= 4094`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanRange {
    pub first: u16,
    pub last: u16,
}

impl VlanRange {
    /// A range, or None unless `MIN_VLAN <= first <= last <= MAX_VLAN`.
    pub fn new(first: u16, last: u16) -> Option<VlanRange> {
        (MIN_VLAN <= first && first <= last && last <= MAX_VLAN)
            .then_some(VlanRange { first, last })
    }

    /// Whether `vid` is in the range.
    pub fn contains(&self, vid: u16) -> bool {
        self.first <= vid && vid <= self.last
    }
}

impl fmt::Display for VlanRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// The options of one `bridge` line or `tap` rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortOptions {
    pub mtu: Mtu,
    /// Access port: PVID, untagged (1..=4094).
    pub vlan: Option<u16>,
    /// Trunk: VLANs carried tagged; sorted, overlapping and adjacent ranges merged.
    pub tagged: Vec<VlanRange>,
    /// `None` = not given.
    pub isolated: Option<bool>,
    pub hairpin: Option<bool>,
    pub learning: Option<bool>,
    pub flood: Option<bool>,
    pub tap_mac: TapMac,
    /// Proxy ARP on the tap (routed taps only).
    pub proxy_arp: Option<bool>,
}

impl PortOptions {
    /// The first bridge-port option (`vlan`, `tagged`, `isolated`, `hairpin`, `learning`,
    /// `flood`) given, by name, even one that only restates the default (`isolated off`); None
    /// when there is none (for "not on a routed tap").
    pub fn first_bridge_port_option(&self) -> Option<&'static str> {
        [
            ("vlan", self.vlan.is_some()),
            ("tagged", !self.tagged.is_empty()),
            ("isolated", self.isolated.is_some()),
            ("hairpin", self.hairpin.is_some()),
            ("learning", self.learning.is_some()),
            ("flood", self.flood.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
    }

    /// Whether `vid` is one of the tagged VLANs.
    pub fn is_tagged(&self, vid: u16) -> bool {
        self.tagged.iter().any(|r| r.contains(vid))
    }
}

/// The options in config syntax, defaults included for `mtu` and `tap-mac`
/// (for example `mtu auto vlan 20 isolated on tap-mac fe`).
impl fmt::Display for PortOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mtu {
            Mtu::Auto => f.write_str("mtu auto")?,
            Mtu::Fixed(n) => write!(f, "mtu {n}")?,
        }
        if let Some(v) = self.vlan {
            write!(f, " vlan {v}")?;
        }
        if !self.tagged.is_empty() {
            f.write_str(" tagged ")?;
            for (i, r) in self.tagged.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{r}")?;
            }
        }
        for (key, val) in [
            ("isolated", self.isolated),
            ("hairpin", self.hairpin),
            ("learning", self.learning),
            ("flood", self.flood),
        ] {
            if let Some(on) = val {
                write!(f, " {key} {}", if on { "on" } else { "off" })?;
            }
        }
        match self.tap_mac {
            TapMac::Fe => f.write_str(" tap-mac fe")?,
            TapMac::Keep => f.write_str(" tap-mac keep")?,
        }
        if let Some(on) = self.proxy_arp {
            write!(f, " proxy-arp {}", if on { "on" } else { "off" })?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Mtu,
    Vlan,
    Tagged,
    Isolated,
    Hairpin,
    Learning,
    Flood,
    TapMac,
    ProxyArp,
}

const KEYS: [Key; 9] = [
    Key::Mtu,
    Key::Vlan,
    Key::Tagged,
    Key::Isolated,
    Key::Hairpin,
    Key::Learning,
    Key::Flood,
    Key::TapMac,
    Key::ProxyArp,
];

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Mtu => "mtu",
            Key::Vlan => "vlan",
            Key::Tagged => "tagged",
            Key::Isolated => "isolated",
            Key::Hairpin => "hairpin",
            Key::Learning => "learning",
            Key::Flood => "flood",
            Key::TapMac => "tap-mac",
            Key::ProxyArp => "proxy-arp",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Key::Mtu => "auto or a number from 68 to 65535",
            Key::Vlan => "a VLAN id from 1 to 4094",
            Key::Tagged => "a list of VLAN ids 1-4094 and ranges, such as 10,20-29",
            Key::Isolated | Key::Hairpin | Key::Learning | Key::Flood | Key::ProxyArp => {
                "on or off"
            }
            Key::TapMac => "fe or keep",
        }
    }

    fn from_word(word: &str) -> Option<Key> {
        KEYS.into_iter().find(|k| k.name() == word)
    }
}

/// A decimal number of ASCII digits only (no sign, no spaces), or None.
fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn vlan_id(s: &str) -> Option<u16> {
    let n = number(s)?;
    let n = u16::try_from(n).ok()?;
    (MIN_VLAN..=MAX_VLAN).contains(&n).then_some(n)
}

fn on_off(s: &str) -> Option<bool> {
    match s {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// Parse `10,20-29` into sorted, merged ranges.
fn vlan_list(s: &str) -> Option<Vec<VlanRange>> {
    let mut ranges = Vec::new();
    for item in s.split(',') {
        let range = match item.split_once('-') {
            Some((a, b)) => VlanRange::new(vlan_id(a)?, vlan_id(b)?)?,
            None => {
                let v = vlan_id(item)?;
                VlanRange { first: v, last: v }
            }
        };
        ranges.push(range);
    }
    ranges.sort_by_key(|r| (r.first, r.last));
    let mut merged: Vec<VlanRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(prev) if u32::from(r.first) <= u32::from(prev.last) + 1 => {
                prev.last = prev.last.max(r.last);
            }
            _ => merged.push(r),
        }
    }
    Some(merged)
}

/// Parse `KEY VALUE ...` pairs into options. Each key at most once; `vlan` must not also be in
/// `tagged`.
pub(crate) fn parse_options(tokens: &[&str]) -> Result<PortOptions, LineError> {
    let mut opts = PortOptions::default();
    let mut seen: Vec<Key> = Vec::new();
    let mut rest = tokens.iter();
    while let Some(&word) = rest.next() {
        let key = Key::from_word(word).ok_or_else(|| LineError::UnknownOption {
            option: word.to_owned(),
        })?;
        let value = *rest.next().ok_or(LineError::MissingValue {
            option: key.name(),
            expected: key.expected(),
        })?;
        if seen.contains(&key) {
            return Err(LineError::DuplicateOption { option: key.name() });
        }
        seen.push(key);
        let bad = || LineError::BadValue {
            option: key.name(),
            value: value.to_owned(),
            expected: key.expected(),
        };
        match key {
            Key::Mtu => {
                opts.mtu = match value {
                    "auto" => Mtu::Auto,
                    _ => match number(value) {
                        Some(n) if (MIN_MTU..=MAX_MTU).contains(&n) => Mtu::Fixed(n),
                        _ => return Err(bad()),
                    },
                }
            }
            Key::Vlan => opts.vlan = Some(vlan_id(value).ok_or_else(bad)?),
            Key::Tagged => opts.tagged = vlan_list(value).ok_or_else(bad)?,
            Key::Isolated => opts.isolated = Some(on_off(value).ok_or_else(bad)?),
            Key::Hairpin => opts.hairpin = Some(on_off(value).ok_or_else(bad)?),
            Key::Learning => opts.learning = Some(on_off(value).ok_or_else(bad)?),
            Key::Flood => opts.flood = Some(on_off(value).ok_or_else(bad)?),
            Key::ProxyArp => opts.proxy_arp = Some(on_off(value).ok_or_else(bad)?),
            Key::TapMac => {
                opts.tap_mac = match value {
                    "fe" => TapMac::Fe,
                    "keep" => TapMac::Keep,
                    _ => return Err(bad()),
                }
            }
        }
    }
    if let Some(vlan) = opts.vlan {
        if opts.is_tagged(vlan) {
            return Err(LineError::VlanAlsoTagged { vlan });
        }
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn opts(line: &str) -> Result<PortOptions, LineError> {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        parse_options(&tokens)
    }

    fn r(first: u16, last: u16) -> VlanRange {
        VlanRange { first, last }
    }

    fn bad_value(line: &str) -> (&'static str, String) {
        match opts(line) {
            Err(LineError::BadValue { option, value, .. }) => (option, value),
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn none_is_default() {
        let o = opts("").unwrap();
        assert_eq!(o, PortOptions::default());
        assert_eq!(o.mtu, Mtu::Auto);
        assert_eq!(o.tap_mac, TapMac::Fe);
        assert_eq!(o.first_bridge_port_option(), None);
    }

    #[test]
    fn mtu_good() {
        assert_eq!(opts("mtu auto").unwrap().mtu, Mtu::Auto);
        assert_eq!(opts("mtu 68").unwrap().mtu, Mtu::Fixed(68));
        assert_eq!(opts("mtu 1500").unwrap().mtu, Mtu::Fixed(1500));
        assert_eq!(opts("mtu 9000").unwrap().mtu, Mtu::Fixed(9000));
        assert_eq!(opts("mtu 65535").unwrap().mtu, Mtu::Fixed(65535));
        assert_eq!(opts("mtu 9000").unwrap().first_bridge_port_option(), None);
    }

    #[test]
    fn mtu_bad() {
        for v in [
            "67",
            "0",
            "65536",
            "-1",
            "+1500",
            "1500x",
            "0x5dc",
            "AUTO",
            "99999999999999999999",
            "1_500",
        ] {
            assert_eq!(bad_value(&format!("mtu {v}")), ("mtu", v.to_owned()));
        }
    }

    #[test]
    fn vlan_good_and_bad() {
        let o = opts("vlan 1").unwrap();
        assert_eq!(o.vlan, Some(1));
        assert_eq!(o.first_bridge_port_option(), Some("vlan"));
        assert_eq!(opts("vlan 4094").unwrap().vlan, Some(4094));
        assert_eq!(opts("vlan 020").unwrap().vlan, Some(20));
        for v in ["0", "4095", "65536", "-5", "x", "1-2", "1,2"] {
            assert_eq!(bad_value(&format!("vlan {v}")), ("vlan", v.to_owned()));
        }
    }

    #[test]
    fn tagged_good() {
        assert_eq!(opts("tagged 10").unwrap().tagged, vec![r(10, 10)]);
        assert_eq!(
            opts("tagged 10,20-29").unwrap().tagged,
            vec![r(10, 10), r(20, 29)]
        );
        // Sorted and merged: overlapping, adjacent, duplicate, contained.
        assert_eq!(
            opts("tagged 30-40,5,20-29,6,35-36,41,5,100-100,1-2,3")
                .unwrap()
                .tagged,
            vec![r(1, 3), r(5, 6), r(20, 41), r(100, 100)]
        );
        assert_eq!(opts("tagged 1-4094").unwrap().tagged, vec![r(1, 4094)]);
        assert_eq!(
            opts("tagged 5").unwrap().first_bridge_port_option(),
            Some("tagged")
        );
    }

    #[test]
    fn tagged_bad() {
        for v in [
            "0", "4095", "10,", ",10", "10,,20", "29-20", "1-", "-5", "1-2-3", "a", "10;20",
            "10-4095", "0-5",
        ] {
            assert_eq!(bad_value(&format!("tagged {v}")), ("tagged", v.to_owned()));
        }
    }

    #[test]
    fn vlan_also_tagged() {
        assert_eq!(
            opts("vlan 20 tagged 10,15-25"),
            Err(LineError::VlanAlsoTagged { vlan: 20 })
        );
        assert_eq!(
            opts("tagged 20 vlan 20"),
            Err(LineError::VlanAlsoTagged { vlan: 20 })
        );
        let o = opts("vlan 20 tagged 10,21-29").unwrap();
        assert_eq!(o.vlan, Some(20));
        assert_eq!(o.tagged, vec![r(10, 10), r(21, 29)]);
    }

    #[test]
    fn on_off_options() {
        let o = opts("isolated on hairpin off learning on flood off").unwrap();
        assert_eq!(o.isolated, Some(true));
        assert_eq!(o.hairpin, Some(false));
        assert_eq!(o.learning, Some(true));
        assert_eq!(o.flood, Some(false));
        for key in ["isolated", "hairpin", "learning", "flood"] {
            let o = opts(&format!("{key} off")).unwrap();
            assert_eq!(o.first_bridge_port_option(), Some(key));
            for v in ["yes", "1", "true", "ON", "Off", "onn"] {
                assert_eq!(bad_value(&format!("{key} {v}")), (key, v.to_owned()));
            }
        }
    }

    #[test]
    fn tap_mac() {
        assert_eq!(opts("tap-mac fe").unwrap().tap_mac, TapMac::Fe);
        assert_eq!(opts("tap-mac keep").unwrap().tap_mac, TapMac::Keep);
        assert_eq!(
            opts("tap-mac keep").unwrap().first_bridge_port_option(),
            None
        );
        for v in ["FE", "random", "fe:00:00:00:00:01"] {
            assert_eq!(
                bad_value(&format!("tap-mac {v}")),
                ("tap-mac", v.to_owned())
            );
        }
    }

    #[test]
    fn missing_value() {
        for key in [
            "mtu", "vlan", "tagged", "isolated", "hairpin", "learning", "flood", "tap-mac",
        ] {
            match opts(&format!("isolated on {key}")) {
                Err(LineError::MissingValue { option, .. }) if key != "isolated" => {
                    assert_eq!(option, key)
                }
                // "isolated on isolated": the duplicate has no value, missing value wins.
                Err(LineError::MissingValue { option, .. }) => assert_eq!(option, "isolated"),
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    #[test]
    fn duplicate_option() {
        for line in [
            "mtu 1500 mtu 1500",
            "mtu auto vlan 2 mtu 9000",
            "vlan 1 vlan 2",
            "tagged 1 tagged 2",
            "isolated on isolated off",
            "hairpin on hairpin on",
            "learning on learning off",
            "flood on flood off",
            "tap-mac fe tap-mac keep",
        ] {
            let key = line.split(' ').next().unwrap();
            assert_eq!(
                opts(line),
                Err(LineError::DuplicateOption {
                    option: Key::from_word(key).unwrap().name()
                }),
                "{line}"
            );
        }
    }

    #[test]
    fn unknown_option() {
        let e = opts("vlam 3").unwrap_err();
        assert_eq!(
            e,
            LineError::UnknownOption {
                option: "vlam".into()
            }
        );
        assert_eq!(
            e.to_string(),
            r#"unknown option "vlam" (expected mtu, vlan, tagged, isolated, hairpin, learning, flood, tap-mac, proxy-arp)"#
        );
        assert!(matches!(
            opts("mtu 1500 3"),
            Err(LineError::UnknownOption { .. })
        ));
    }

    #[test]
    fn display_round_trips() {
        for line in [
            "mtu auto tap-mac fe",
            "mtu 9000 vlan 20 tagged 10,30-39 isolated on hairpin off learning on flood off tap-mac keep",
        ] {
            let o = opts(line).unwrap();
            assert_eq!(o.to_string(), line);
            assert_eq!(opts(&o.to_string()).unwrap(), o);
        }
    }

    #[test]
    fn vlan_range_new() {
        assert_eq!(VlanRange::new(1, 4094), Some(r(1, 4094)));
        assert_eq!(VlanRange::new(0, 5), None);
        assert_eq!(VlanRange::new(5, 4), None);
        assert_eq!(VlanRange::new(5, 4095), None);
        assert!(r(3, 5).contains(3) && r(3, 5).contains(5) && !r(3, 5).contains(6));
    }
}
