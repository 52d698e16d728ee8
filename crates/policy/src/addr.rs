//! IP addresses and prefixes in the config: the destinations of a routed tap (`route LIST`), and
//! the addresses of a bridge the helper creates (`create-bridge NAME address LIST`).

use std::fmt;
use std::net::IpAddr;

use crate::error::LineError;

/// An address with a prefix length: `192.0.2.10/32`, `2001:db8::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    /// The longest prefix of the address's family: 32 or 128.
    fn max_len(addr: IpAddr) -> u8 {
        match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }

    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// Whether no bit of the address beyond the prefix is set (a route's destination).
    pub fn is_network(&self) -> bool {
        let bits = match self.addr {
            IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
            IpAddr::V6(a) => u128::from(a),
        };
        self.len >= 128 || bits << self.len == 0
    }
}

/// `ADDR/LEN`, or `ADDR` alone for a single address.
impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == Prefix::max_len(self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// Parse `ADDR` or `ADDR/LEN`: IPv4 or IPv6, the length within the family's.
fn parse_one(s: &str) -> Option<Prefix> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => {
            if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) || l.len() > 3 {
                return None;
            }
            (a, Some(l.parse::<u8>().ok()?))
        }
        None => (s, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    let max = Prefix::max_len(addr);
    let len = len.unwrap_or(max);
    (len <= max).then_some(Prefix { addr, len })
}

/// What a list is for: route destinations must be networks (no host bits); interface addresses
/// are addresses in a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    Route,
    Interface,
}

/// Parse a comma-separated list of addresses or prefixes for `option`. Each must be unique.
pub(crate) fn parse_list(
    option: &'static str,
    s: &str,
    use_: Use,
) -> Result<Vec<Prefix>, LineError> {
    let expected = match use_ {
        Use::Route => "IPv4 or IPv6 addresses or prefixes, such as 192.0.2.10,2001:db8::10",
        Use::Interface => {
            "IPv4 or IPv6 addresses with a prefix, such as 10.10.0.1/24,fd00:10::1/64"
        }
    };
    let bad = || LineError::BadValue {
        option,
        value: s.to_owned(),
        expected,
    };
    let mut out: Vec<Prefix> = Vec::new();
    for item in s.split(',') {
        let p = parse_one(item).ok_or_else(bad)?;
        match use_ {
            Use::Route if !p.is_network() => {
                return Err(LineError::HostBits {
                    value: item.to_owned(),
                })
            }
            Use::Interface if item.split_once('/').is_none() || p.len == 0 => return Err(bad()),
            _ => {}
        }
        if out.contains(&p) {
            return Err(LineError::Duplicate {
                value: item.to_owned(),
            });
        }
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_and_prefixes() {
        let l = parse_list(
            "route",
            "192.0.2.10,2001:db8::10,198.51.100.0/28,2001:db8:1::/64",
            Use::Route,
        )
        .unwrap();
        assert_eq!(
            l.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "192.0.2.10",
                "2001:db8::10",
                "198.51.100.0/28",
                "2001:db8:1::/64"
            ]
        );
        assert_eq!(l[0].len, 32);
        assert_eq!(l[1].len, 128);
        assert!(l[1].is_ipv6() && !l[0].is_ipv6());
        assert_eq!(
            parse_list("route", "0.0.0.0/0", Use::Route).unwrap()[0].len,
            0
        );
    }

    #[test]
    fn bad_lists() {
        for bad in [
            "",
            ",",
            "192.0.2.10,",
            "192.0.2.256",
            "192.0.2.1/33",
            "2001:db8::/129",
            "x",
            "192.0.2.0/",
            "192.0.2.0/+8",
            "192.0.2.0/0008",
            "fe80::1%eth0",
            " 192.0.2.1",
        ] {
            assert!(
                matches!(
                    parse_list("route", bad, Use::Route),
                    Err(LineError::BadValue { .. })
                ),
                "{bad:?}"
            );
        }
        // Host bits set in a route's prefix: the kernel would refuse it.
        assert_eq!(
            parse_list("route", "192.0.2.1/28", Use::Route),
            Err(LineError::HostBits {
                value: "192.0.2.1/28".into()
            })
        );
        assert!(matches!(
            parse_list("route", "2001:db8::1/64", Use::Route),
            Err(LineError::HostBits { .. })
        ));
        assert!(matches!(
            parse_list("route", "192.0.2.1,192.0.2.1/32", Use::Route),
            Err(LineError::Duplicate { .. })
        ));
        // An interface address needs its prefix; host bits are its point.
        assert!(parse_list("address", "10.10.0.1/24,fd00::1/64", Use::Interface).is_ok());
        assert!(matches!(
            parse_list("address", "10.10.0.1", Use::Interface),
            Err(LineError::BadValue { .. })
        ));
    }

    #[test]
    fn networks() {
        let p = |s| parse_one(s).unwrap();
        assert!(p("192.0.2.0/24").is_network());
        assert!(!p("192.0.2.1/24").is_network());
        assert!(p("192.0.2.1").is_network());
        assert!(p("0.0.0.0/0").is_network());
        assert!(!p("1.0.0.0/0").is_network());
        assert!(p("2001:db8::/32").is_network());
        assert!(!p("2001:db8::1/127").is_network());
        assert!(p("2001:db8::1").is_network());
    }
}
