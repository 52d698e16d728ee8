//! The config file: `bridge NAME [OPTION ...]`, `tap GLOB bridge NAME [OPTION ...]`,
//! `tap GLOB route LIST [OPTION ...]`, `create-bridge NAME [address LIST] [mac MAC]`,
//! `include FILE`; `#` starts a comment anywhere on a line.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::addr::{parse_list, Prefix, Use};
use crate::error::{show_path, LineError, PolicyError};
use crate::glob::{glob_match, validate_glob};
use crate::name::IfName;
use crate::options::{parse_options, PortOptions};
use crate::source::{
    check_trusted, located_lines, read_main, tokens, FileData, FileSource, Includes, Trust,
};

/// A line of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
}

/// `FILE:LINE`, control characters in the path escaped.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", show_path(&self.file), self.line)
    }
}

/// The `bridge NAME [OPTION ...]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeLine {
    pub bridge: IfName,
    pub options: PortOptions,
    pub at: Location,
}

/// What a rule does with a tap: attach it to a bridge, or route addresses to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Way {
    Bridge(IfName),
    /// Host routes (or prefixes) to the tap, in the order given.
    Route(Vec<Prefix>),
}

impl Way {
    /// The bridge, or None for routes.
    fn bridge(&self) -> Option<&IfName> {
        match self {
            Way::Bridge(bridge) => Some(bridge),
            Way::Route(_) => None,
        }
    }
}

/// A `tap GLOB bridge NAME [OPTION ...]` or `tap GLOB route LIST [OPTION ...]` rule. The glob
/// has been validated, and the options fit the way (no bridge-port option on a routed tap, no
/// `proxy-arp` on a bridged one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapRule {
    pub glob: String,
    pub way: Way,
    pub options: PortOptions,
    pub at: Location,
}

/// A `create-bridge NAME [address LIST] [mac MAC]` line: a bridge the helper may create when a
/// tap is to join it and it does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeDef {
    pub name: IfName,
    /// Addresses of the bridge (the host's on that network), with their prefixes.
    pub addresses: Vec<Prefix>,
    /// Its MAC address: given, or derived from its name ([`BridgeDef::mac`]).
    pub mac: Option<[u8; 6]>,
    pub at: Location,
}

impl BridgeDef {
    /// The bridge's MAC: the one given, else one derived from its name (the same on every host
    /// and at every creation), locally administered and unicast: `02:` and five bytes of an
    /// FNV-1a hash of the name.
    pub fn mac(&self) -> [u8; 6] {
        if let Some(mac) = self.mac {
            return mac;
        }
        let h = self
            .name
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
            .to_be_bytes();
        [0x02, h[0], h[1], h[2], h[3], h[4]]
    }
}

/// A parsed config: the `bridge` line, if any, the tap rules in file order (an included file's
/// rules stand where its `include` line stands), and the bridges the helper may create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    pub bridge: Option<BridgeLine>,
    pub rules: Vec<TapRule>,
    pub create_bridges: Vec<BridgeDef>,
}

/// Where a [`Choice`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    TapRule { glob: String, at: Location },
    BridgeLine { at: Location },
}

/// `tap rule "vm-*" at FILE:LINE` / `bridge line at FILE:LINE`.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::TapRule { glob, at } => {
                write!(f, "tap rule {} at {at}", crate::error::quote(glob))
            }
            Origin::BridgeLine { at } => write!(f, "bridge line at {at}"),
        }
    }
}

/// The bridge or routes (and options) the config chose for a tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub way: Way,
    pub options: PortOptions,
    pub origin: Origin,
}

impl Config {
    /// qemu-ifup-rs(8)'s "Choosing the bridge", steps 1-2: the first tap rule whose glob matches,
    /// else the `bridge` line. None: fall back to the default route's device, with
    /// `PortOptions::default()`.
    pub fn choose(&self, tap: &IfName) -> Option<Choice> {
        self.choose_where(tap, |_| true)
    }

    /// The `create-bridge` line for `bridge`, if any.
    pub fn bridge_def(&self, bridge: &IfName) -> Option<&BridgeDef> {
        self.create_bridges.iter().find(|d| d.name == *bridge)
    }

    /// For a tap the bridge helper made for `bridge` (QEMU's `-netdev bridge`): the first tap
    /// rule whose bridge is `bridge` and whose glob matches the tap's name, else the `bridge`
    /// line if it names `bridge`. None: the defaults (`mtu auto`, `tap-mac fe`).
    pub fn choose_for_bridge(&self, tap: &IfName, bridge: &IfName) -> Option<Choice> {
        self.choose_where(tap, |b| b == Some(bridge))
    }

    /// The first tap rule whose glob matches `tap` and whose bridge `fits` (None: a routed
    /// rule), else the `bridge` line if its bridge fits.
    fn choose_where(&self, tap: &IfName, fits: impl Fn(Option<&IfName>) -> bool) -> Option<Choice> {
        if let Some(rule) = self
            .rules
            .iter()
            .find(|rule| fits(rule.way.bridge()) && glob_match(&rule.glob, tap.as_str()))
        {
            return Some(rule.choice());
        }
        self.bridge
            .as_ref()
            .filter(|line| fits(Some(&line.bridge)))
            .map(BridgeLine::choice)
    }
}

impl TapRule {
    fn choice(&self) -> Choice {
        Choice {
            way: self.way.clone(),
            options: self.options.clone(),
            origin: Origin::TapRule {
                glob: self.glob.clone(),
                at: self.at.clone(),
            },
        }
    }
}

impl BridgeLine {
    fn choice(&self) -> Choice {
        Choice {
            way: Way::Bridge(self.bridge.clone()),
            options: self.options.clone(),
            origin: Origin::BridgeLine {
                at: self.at.clone(),
            },
        }
    }
}

/// Parse the config at `path`. Ok(None) if the main file does not exist. Includes are read via
/// `src`, relative paths taken from the including file's directory; include loops and nesting
/// deeper than [`crate::MAX_INCLUDE_DEPTH`] are errors, and so is a missing included file. With
/// `Trust::RootOwnedOnly` every file (main and included) must pass [`check_trusted`].
pub fn parse_config(
    path: &Path,
    src: &dyn FileSource,
    trust: Trust,
) -> Result<Option<Config>, PolicyError> {
    let unreadable = |path, source| PolicyError::ConfigRead { path, source };
    let Some(data) = read_main(src, path, unreadable)? else {
        return Ok(None);
    };
    let mut parser = Parser {
        includes: Includes::new(src),
        trust,
        config: Config::default(),
    };
    parser.file(path, &data, 0)?;
    Ok(Some(parser.config))
}

struct Parser<'a> {
    includes: Includes<'a>,
    trust: Trust,
    config: Config,
}

impl Parser<'_> {
    fn file(&mut self, path: &Path, data: &FileData, depth: usize) -> Result<(), PolicyError> {
        if self.trust == Trust::RootOwnedOnly {
            check_trusted(path, data)?;
        }
        self.includes.enter(path);
        for (at, content) in located_lines(path, &data.text) {
            let content = content.map_err(|problem| PolicyError::Config {
                at: at.clone(),
                problem,
            })?;
            self.line(&at, content, depth)?;
        }
        self.includes.leave();
        Ok(())
    }

    fn line(&mut self, at: &Location, content: &str, depth: usize) -> Result<(), PolicyError> {
        let wrap = |problem| PolicyError::Config {
            at: at.clone(),
            problem,
        };
        let tokens = tokens(content);
        match tokens.first().copied() {
            Some("bridge") => {
                let line = bridge_line(&tokens, at).map_err(wrap)?;
                if let Some(first) = &self.config.bridge {
                    return Err(wrap(LineError::SecondBridge {
                        first: first.at.clone(),
                    }));
                }
                self.config.bridge = Some(line);
            }
            Some("tap") => {
                let rule = tap_rule(&tokens, at).map_err(wrap)?;
                self.config.rules.push(rule);
            }
            Some("create-bridge") => {
                let def = create_bridge(&tokens, at).map_err(wrap)?;
                if let Some(first) = self.config.bridge_def(&def.name) {
                    return Err(wrap(LineError::SecondCreateBridge {
                        name: def.name.to_string(),
                        first: first.at.clone(),
                    }));
                }
                self.config.create_bridges.push(def);
            }
            Some("include") => {
                let (target, data) = self.includes.open(at, content, depth + 1, &wrap)?;
                self.file(&target, &data, depth + 1)?;
            }
            Some(word) => {
                return Err(wrap(LineError::UnknownKeyword {
                    word: word.to_owned(),
                    expected: "bridge, tap, create-bridge or include",
                }))
            }
            // content_lines yields no blank lines; nothing to do if it ever did.
            None => {}
        }
        Ok(())
    }
}

/// The bridge name at `tokens[index]`, which follows `keyword`.
fn bridge_name(keyword: &'static str, tokens: &[&str], index: usize) -> Result<IfName, LineError> {
    let name = tokens.get(index).ok_or(LineError::MissingArgument {
        keyword,
        what: "a bridge name",
    })?;
    IfName::parse(name).map_err(LineError::BadName)
}

/// Check that `options` fit a tap attached to `bridge` (None: a routed tap): no `proxy-arp` on a
/// bridged tap, no bridge-port option on a routed one.
fn options_fit(bridge: Option<&IfName>, options: &PortOptions) -> Result<(), LineError> {
    match (bridge, options.first_bridge_port_option()) {
        (Some(_), _) if options.proxy_arp.is_some() => Err(LineError::NotForBridge),
        (None, Some(option)) => Err(LineError::NotForRoute { option }),
        _ => Ok(()),
    }
}

/// `bridge NAME [OPTION ...]`
fn bridge_line(tokens: &[&str], at: &Location) -> Result<BridgeLine, LineError> {
    let bridge = bridge_name("bridge", tokens, 1)?;
    let options = parse_options(tokens.get(2..).unwrap_or_default())?;
    options_fit(Some(&bridge), &options)?;
    Ok(BridgeLine {
        bridge,
        options,
        at: at.clone(),
    })
}

/// `tap GLOB bridge NAME [OPTION ...]`
fn tap_rule(tokens: &[&str], at: &Location) -> Result<TapRule, LineError> {
    let glob = *tokens.get(1).ok_or(LineError::MissingArgument {
        keyword: "tap",
        what: "a glob and \"bridge NAME\"",
    })?;
    validate_glob(glob).map_err(|reason| LineError::BadGlob {
        glob: glob.to_owned(),
        reason,
    })?;
    let way = match tokens.get(2) {
        Some(&"bridge") => Way::Bridge(bridge_name("bridge", tokens, 3)?),
        Some(&"route") => {
            let list = tokens.get(3).ok_or(LineError::MissingArgument {
                keyword: "route",
                what: "a list of addresses or prefixes",
            })?;
            Way::Route(parse_list("route", list, Use::Route)?)
        }
        Some(other) => {
            return Err(LineError::ExpectedBridge {
                found: (*other).to_owned(),
            })
        }
        None => {
            return Err(LineError::MissingArgument {
                keyword: "tap",
                what: "\"bridge NAME\" or \"route LIST\" after the glob",
            })
        }
    };
    let options = parse_options(tokens.get(4..).unwrap_or_default())?;
    options_fit(way.bridge(), &options)?;
    Ok(TapRule {
        glob: glob.to_owned(),
        way,
        options,
        at: at.clone(),
    })
}

/// `create-bridge NAME [address LIST] [mac MAC]`
fn create_bridge(tokens: &[&str], at: &Location) -> Result<BridgeDef, LineError> {
    let name = bridge_name("create-bridge", tokens, 1)?;
    let (mut addresses, mut mac) = (None, None);
    let mut rest = tokens.get(2..).unwrap_or_default().iter();
    while let Some(&word) = rest.next() {
        let (option, expected) = match word {
            "address" => ("address", "addresses with a prefix, such as 10.10.0.1/24"),
            "mac" => ("mac", "a unicast MAC address, such as 02:00:00:00:00:01"),
            other => {
                return Err(LineError::UnknownOption {
                    option: other.to_owned(),
                })
            }
        };
        let value = *rest
            .next()
            .ok_or(LineError::MissingValue { option, expected })?;
        if option == "address" {
            if addresses.is_some() {
                return Err(LineError::DuplicateOption { option });
            }
            addresses = Some(parse_list("address", value, Use::Interface)?);
        } else {
            if mac.is_some() {
                return Err(LineError::DuplicateOption { option });
            }
            mac = Some(parse_mac(value).ok_or_else(|| LineError::BadValue {
                option,
                value: value.to_owned(),
                expected,
            })?);
        }
    }
    Ok(BridgeDef {
        name,
        addresses: addresses.unwrap_or_default(),
        mac,
        at: at.clone(),
    })
}

/// Six hex pairs separated by `:`, unicast (the low bit of the first byte clear), not all zero.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    (parts.next().is_none() && mac[0] & 1 == 0 && mac != [0; 6]).then_some(mac)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::options::{Mtu, TapMac, VlanRange};
    use crate::source::{FileMeta, MemSource, S_IFDIR, S_IFREG};
    use crate::{GlobError, NameError, TrustProblem};
    use std::io;

    const MAIN: &str = "/etc/qemu-ifup-rs.conf";

    fn name(s: &str) -> IfName {
        IfName::parse(s).unwrap()
    }

    fn at(file: &str, line: usize) -> Location {
        Location {
            file: file.into(),
            line,
        }
    }

    fn parse_src(src: &MemSource) -> Result<Option<Config>, PolicyError> {
        parse_config(Path::new(MAIN), src, Trust::RootOwnedOnly)
    }

    fn parse(text: &str) -> Result<Config, PolicyError> {
        let mut src = MemSource::new();
        src.insert_text(MAIN, text);
        parse_src(&src).map(|c| c.unwrap())
    }

    /// The line error of a one-file config, checking file and line.
    #[track_caller]
    fn line_err(text: &str, line: usize) -> LineError {
        match parse(text) {
            Err(PolicyError::Config { at: a, problem }) => {
                assert_eq!(a, at(MAIN, line), "{text:?}");
                problem
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn missing_main_file_is_none() {
        let src = MemSource::new();
        assert_eq!(parse_src(&src).unwrap(), None);
        assert_eq!(
            parse_config(Path::new(MAIN), &src, Trust::Any).unwrap(),
            None
        );
    }

    #[test]
    fn unreadable_main_file() {
        let mut src = MemSource::new();
        src.insert_error(MAIN, io::ErrorKind::PermissionDenied);
        let e = parse_src(&src).unwrap_err();
        assert!(matches!(e, PolicyError::ConfigRead { ref path, .. } if path == Path::new(MAIN)));
        assert!(e
            .to_string()
            .starts_with("cannot read /etc/qemu-ifup-rs.conf: "));
        assert!(e.is_usage());
    }

    #[test]
    fn empty_and_comments() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(
            parse("# nothing\n\n   \n\t# indented\n").unwrap(),
            Config::default()
        );
        assert_eq!(parse("# x\n").unwrap().choose(&name("tap0")), None);
    }

    #[test]
    fn readme_example() {
        let c = parse(
            "bridge br0\n\
             tap vm-lab-*  bridge br-lab\n\
             tap vm-dmz-*  bridge br0 vlan 20 isolated on\n",
        )
        .unwrap();
        let bridge = c.bridge.clone().unwrap();
        assert_eq!(bridge.bridge, name("br0"));
        assert_eq!(bridge.options, PortOptions::default());
        assert_eq!(bridge.at, at(MAIN, 1));
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[0].glob, "vm-lab-*");
        assert_eq!(c.rules[1].at, at(MAIN, 3));
        assert_eq!(c.rules[1].options.vlan, Some(20));
        assert_eq!(c.rules[1].options.isolated, Some(true));

        let lab = c.choose(&name("vm-lab-7")).unwrap();
        assert_eq!(lab.way, Way::Bridge(name("br-lab")));
        assert_eq!(
            lab.origin,
            Origin::TapRule {
                glob: "vm-lab-*".into(),
                at: at(MAIN, 2)
            }
        );
        assert_eq!(
            lab.origin.to_string(),
            "tap rule \"vm-lab-*\" at /etc/qemu-ifup-rs.conf:2"
        );
        let dmz = c.choose(&name("vm-dmz-1")).unwrap();
        assert_eq!(dmz.way, Way::Bridge(name("br0")));
        assert_eq!(dmz.options.first_bridge_port_option(), Some("vlan"));
        let other = c.choose(&name("tap0")).unwrap();
        assert_eq!(other.way, Way::Bridge(name("br0")));
        assert_eq!(other.origin, Origin::BridgeLine { at: at(MAIN, 1) });
        assert_eq!(
            other.origin.to_string(),
            "bridge line at /etc/qemu-ifup-rs.conf:1"
        );
    }

    #[test]
    fn first_matching_rule_wins() {
        let c = parse(
            "tap vm-* bridge br-a mtu 9000\n\
             bridge br0 tap-mac keep\n\
             tap vm-1 bridge br-b\n\
             tap * bridge br-c\n",
        )
        .unwrap();
        // The first rule beats a later, more specific one and the bridge line (wherever it is).
        let ch = c.choose(&name("vm-1")).unwrap();
        assert_eq!(ch.way, Way::Bridge(name("br-a")));
        assert_eq!(ch.options.mtu, Mtu::Fixed(9000));
        assert_eq!(ch.options.tap_mac, TapMac::Fe);
        // Any rule beats the bridge line, even one after it.
        let ch = c.choose(&name("tap0")).unwrap();
        assert_eq!(ch.way, Way::Bridge(name("br-c")));
        assert_eq!(
            ch.origin,
            Origin::TapRule {
                glob: "*".into(),
                at: at(MAIN, 4)
            }
        );
    }

    #[test]
    fn choice_for_a_helper_made_tap() {
        let c = parse(
            "bridge br0 mtu 1400\n\
             tap tap* bridge br-lab isolated on\n\
             tap tap1* bridge br0 hairpin on\n\
             tap * bridge br0 learning off\n",
        )
        .unwrap();
        // The first rule for that bridge whose glob matches: not the br-lab rule for br0.
        let ch = c.choose_for_bridge(&name("tap12"), &name("br0")).unwrap();
        assert_eq!(ch.options.hairpin, Some(true));
        let ch = c.choose_for_bridge(&name("tap3"), &name("br0")).unwrap();
        assert_eq!(ch.options.learning, Some(false));
        let ch = c.choose_for_bridge(&name("tap3"), &name("br-lab")).unwrap();
        assert_eq!(ch.options.isolated, Some(true));
        // No rule for the bridge: the bridge line if it names it, else nothing (defaults).
        let c = parse("bridge br0 mtu 1400\ntap vm* bridge br1\n").unwrap();
        let ch = c.choose_for_bridge(&name("tap0"), &name("br0")).unwrap();
        assert_eq!(ch.options.mtu, Mtu::Fixed(1400));
        assert_eq!(ch.origin, Origin::BridgeLine { at: at(MAIN, 1) });
        assert_eq!(c.choose_for_bridge(&name("tap0"), &name("br9")), None);
    }

    #[test]
    fn routed_rules() {
        let c = parse(
            "tap vm-web0 route 192.0.2.10,2001:db8::10 mtu 1400 proxy-arp on\n\
             tap vm-net* route 198.51.100.0/28 tap-mac keep\n",
        )
        .unwrap();
        let ch = c.choose(&name("vm-web0")).unwrap();
        match &ch.way {
            Way::Route(p) => assert_eq!(
                p.iter().map(ToString::to_string).collect::<Vec<_>>(),
                ["192.0.2.10", "2001:db8::10"]
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(ch.options.proxy_arp, Some(true));
        assert_eq!(ch.options.mtu, Mtu::Fixed(1400));
        assert_eq!(
            c.choose(&name("vm-net3")).unwrap().options.tap_mac,
            TapMac::Keep
        );
        // Bridge-port options have no port to act on; proxy-arp is for routed taps only.
        assert_eq!(
            line_err("tap x route 192.0.2.1 isolated on", 1),
            LineError::NotForRoute { option: "isolated" }
        );
        assert_eq!(
            line_err("tap x route 192.0.2.1 vlan 5", 1),
            LineError::NotForRoute { option: "vlan" }
        );
        assert_eq!(
            line_err("tap x bridge br0 proxy-arp on", 1),
            LineError::NotForBridge
        );
        assert_eq!(
            line_err("bridge br0 proxy-arp off", 1),
            LineError::NotForBridge
        );
        assert!(matches!(
            line_err("tap x route", 1),
            LineError::MissingArgument {
                keyword: "route",
                ..
            }
        ));
        assert!(matches!(
            line_err("tap x route 192.0.2.1/24", 1),
            LineError::HostBits { .. }
        ));
        assert!(matches!(
            line_err("tap x route 192.0.2.300", 1),
            LineError::BadValue { .. }
        ));
        // A routed rule is never a helper-made tap's: only bridge rules count there.
        assert_eq!(c.choose_for_bridge(&name("vm-web0"), &name("br0")), None);
    }

    #[test]
    fn create_bridge_lines() {
        let c = parse(
            "create-bridge br-priv address 10.10.0.1/24,fd00:10::1/64\n\
             create-bridge br-x mac 02:00:00:00:00:07\n\
             tap vm-* bridge br-priv\n",
        )
        .unwrap();
        let d = c.bridge_def(&name("br-priv")).unwrap();
        assert_eq!(
            d.addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["10.10.0.1/24", "fd00:10::1/64"]
        );
        assert_eq!(d.at, at(MAIN, 1));
        // Derived MAC: locally administered, unicast, the same every time.
        let mac = d.mac();
        assert_eq!(mac[0], 0x02);
        assert_eq!(mac, d.mac());
        assert_ne!(mac, c.bridge_def(&name("br-x")).unwrap().mac());
        assert_eq!(
            c.bridge_def(&name("br-x")).unwrap().mac(),
            [2, 0, 0, 0, 0, 7]
        );
        assert_eq!(c.bridge_def(&name("br0")), None);
        assert!(matches!(
            line_err("create-bridge br0\ncreate-bridge br0", 2),
            LineError::SecondCreateBridge { .. }
        ));
        for bad in [
            "create-bridge",
            "create-bridge br0 address",
            "create-bridge br0 address 10.0.0.1",
            "create-bridge br0 mac 01:00:00:00:00:00",
            "create-bridge br0 mac 00:00:00:00:00:00",
            "create-bridge br0 mac 02:00:00:00:00",
            "create-bridge br0 stp on",
            "create-bridge br0 mac 02:00:00:00:00:01 mac 02:00:00:00:00:02",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rules_without_bridge_line() {
        let c = parse("tap vm-* bridge br-a\n").unwrap();
        assert!(c.choose(&name("vm-x")).is_some());
        assert_eq!(c.choose(&name("tap0")), None);
    }

    #[test]
    fn bridge_line_options() {
        let c = parse("bridge br0 mtu 1400 tagged 10,20-29 hairpin on learning off flood on tap-mac keep # trunk\n").unwrap();
        let o = c.bridge.unwrap().options;
        assert_eq!(o.mtu, Mtu::Fixed(1400));
        assert_eq!(
            o.tagged,
            vec![
                VlanRange {
                    first: 10,
                    last: 10
                },
                VlanRange {
                    first: 20,
                    last: 29
                }
            ]
        );
        assert_eq!(o.hairpin, Some(true));
        assert_eq!(o.learning, Some(false));
        assert_eq!(o.flood, Some(true));
        assert_eq!(o.tap_mac, TapMac::Keep);
        assert_eq!(o.isolated, None);
    }

    #[test]
    fn whitespace_and_comments_anywhere() {
        let c = parse("  \ttap\tvm-*   bridge\tbr1#comment\r\nbridge br0#x y z\n").unwrap();
        assert_eq!(c.rules[0].way, Way::Bridge(name("br1")));
        assert_eq!(c.bridge.unwrap().bridge, name("br0"));
        // '#' cuts a glob too.
        let c = parse("tap vm#1 bridge br0\ntap vm bridge br1 # vlan 3\n").unwrap_err();
        assert!(matches!(
            c,
            PolicyError::Config {
                problem: LineError::MissingArgument { .. },
                ..
            }
        ));
    }

    #[test]
    fn error_messages_name_file_and_line() {
        let e = parse("bridge br0\n\n# c\ntap x bridge br1 vlam 3\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/qemu-ifup-rs.conf:4: unknown option \"vlam\" (expected mtu, vlan, tagged, isolated, hairpin, learning, flood, tap-mac, proxy-arp)"
        );
        assert_eq!(e.location(), Some(&at(MAIN, 4)));
        assert!(e.is_usage());
        let e = parse("bridge br0 mtu 20\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/qemu-ifup-rs.conf:1: bad value \"20\" for option \"mtu\" (expected auto or a number from 68 to 65535)"
        );
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            line_err("\nbrigde br0\n", 2),
            LineError::UnknownKeyword {
                word: "brigde".into(),
                expected: "bridge, tap, create-bridge or include"
            }
        );
        assert_eq!(
            line_err("allow br0", 1),
            LineError::UnknownKeyword {
                word: "allow".into(),
                expected: "bridge, tap, create-bridge or include"
            }
        );
        assert!(matches!(
            line_err("bridge", 1),
            LineError::MissingArgument {
                keyword: "bridge",
                ..
            }
        ));
        assert!(matches!(
            line_err("tap", 1),
            LineError::MissingArgument { keyword: "tap", .. }
        ));
        assert!(matches!(
            line_err("tap vm-*", 1),
            LineError::MissingArgument { keyword: "tap", .. }
        ));
        assert!(matches!(
            line_err("tap vm-* bridge", 1),
            LineError::MissingArgument {
                keyword: "bridge",
                ..
            }
        ));
        assert_eq!(
            line_err("tap vm-* br0", 1),
            LineError::ExpectedBridge {
                found: "br0".into()
            }
        );
        assert_eq!(
            line_err("tap vm-* to br0", 1),
            LineError::ExpectedBridge { found: "to".into() }
        );
        assert!(matches!(
            line_err("bridge br0 br1", 1),
            LineError::UnknownOption { .. }
        ));
        assert!(matches!(
            line_err("bridge br0 mtu", 1),
            LineError::MissingValue { option: "mtu", .. }
        ));
        assert_eq!(
            line_err("bridge br0 mtu 1500 mtu auto", 1),
            LineError::DuplicateOption { option: "mtu" }
        );
        assert_eq!(
            line_err("tap a bridge br0 vlan 5 tagged 1-10", 1),
            LineError::VlanAlsoTagged { vlan: 5 }
        );
        // Keywords are case-sensitive.
        assert!(matches!(
            line_err("Bridge br0", 1),
            LineError::UnknownKeyword { .. }
        ));
        assert!(matches!(
            line_err("include", 1),
            LineError::MissingArgument {
                keyword: "include",
                ..
            }
        ));
        assert!(matches!(
            line_err("include # x", 1),
            LineError::MissingArgument {
                keyword: "include",
                ..
            }
        ));
    }

    #[test]
    fn bad_names_in_config() {
        assert_eq!(
            line_err("bridge 1234567890123456", 1),
            LineError::BadName(NameError::TooLong {
                name: "1234567890123456".into(),
                len: 16
            })
        );
        assert!(matches!(
            line_err("bridge a/b", 1),
            LineError::BadName(NameError::BadChar { ch: '/', .. })
        ));
        assert!(matches!(
            line_err("tap x bridge ..", 1),
            LineError::BadName(NameError::Dot { .. })
        ));
        assert!(matches!(
            line_err("bridge -br0", 1),
            LineError::BadName(NameError::Dash { .. })
        ));
        assert!(matches!(
            line_err("bridge br\u{1}0", 1),
            LineError::BadName(NameError::BadChar { ch: '\u{1}', .. })
        ));
        let e = parse("bridge br\u{1b}0").unwrap_err();
        assert!(e.is_usage());
        assert!(!e.to_string().contains('\u{1b}'));
    }

    #[test]
    fn bad_globs() {
        assert_eq!(
            line_err("tap vm-[ bridge br0", 1),
            LineError::BadGlob {
                glob: "vm-[".into(),
                reason: GlobError::UnterminatedClass
            }
        );
        assert!(matches!(
            line_err("tap [z-a]* bridge br0", 1),
            LineError::BadGlob {
                reason: GlobError::ReversedRange { .. },
                ..
            }
        ));
        let e = parse("tap vm-[ bridge br0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/qemu-ifup-rs.conf:1: invalid glob \"vm-[\": unterminated \"[\""
        );
        let c = parse("tap vm-[0-9] bridge br0").unwrap();
        assert!(c.choose(&name("vm-3")).is_some());
        assert!(c.choose(&name("vm-x")).is_none());
    }

    #[test]
    fn second_bridge_line() {
        let p = line_err("bridge br0\ntap x bridge br1\nbridge br2\n", 3);
        assert_eq!(p, LineError::SecondBridge { first: at(MAIN, 1) });
        assert!(p.to_string().contains("/etc/qemu-ifup-rs.conf:1"));
        // Also across includes.
        let mut src = MemSource::new();
        src.insert_text(MAIN, "bridge br0\ninclude inc.conf\n")
            .insert_text("/etc/inc.conf", "\nbridge br1\n");
        match parse_src(&src) {
            Err(PolicyError::Config { at: a, problem }) => {
                assert_eq!(a, at("/etc/inc.conf", 2));
                assert_eq!(problem, LineError::SecondBridge { first: at(MAIN, 1) });
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn includes_relative_and_absolute() {
        let mut src = MemSource::new();
        src.insert_text(
            MAIN,
            "tap a-* bridge br-a\ninclude qemu-ifup.d/lab.conf\ntap * bridge br-z\n",
        )
        .insert_text(
            "/etc/qemu-ifup.d/lab.conf",
            "tap lab-* bridge br-lab\ninclude ../shared.conf\ninclude /opt/abs.conf\n",
        )
        .insert_text("/etc/qemu-ifup.d/../shared.conf", "bridge br0\n")
        .insert_text("/opt/abs.conf", "tap abs bridge br-abs\n");
        let c = parse_src(&src).unwrap().unwrap();
        let globs: Vec<&str> = c.rules.iter().map(|r| r.glob.as_str()).collect();
        // Included rules stand where the include line stands.
        assert_eq!(globs, ["a-*", "lab-*", "abs", "*"]);
        assert_eq!(c.rules[1].at, at("/etc/qemu-ifup.d/lab.conf", 1));
        assert_eq!(c.rules[2].at, at("/opt/abs.conf", 1));
        assert_eq!(
            c.bridge.unwrap().at,
            at("/etc/qemu-ifup.d/../shared.conf", 1)
        );
        assert_eq!(c.rules[1].way, Way::Bridge(name("br-lab")));
    }

    #[test]
    fn include_path_with_spaces() {
        let mut src = MemSource::new();
        src.insert_text(MAIN, "include my file.conf  # comment\n")
            .insert_text("/etc/my file.conf", "bridge br0\n");
        assert!(parse_src(&src).unwrap().unwrap().bridge.is_some());
    }

    #[test]
    fn relative_main_path() {
        let mut src = MemSource::new();
        src.insert_text("main.conf", "include inc.conf\n")
            .insert_text("inc.conf", "bridge br0\n");
        let c = parse_config(Path::new("main.conf"), &src, Trust::Any)
            .unwrap()
            .unwrap();
        assert_eq!(c.bridge.unwrap().at, at("inc.conf", 1));
    }

    #[test]
    fn missing_include() {
        let mut src = MemSource::new();
        src.insert_text(MAIN, "bridge br0\ninclude nope.conf\n");
        let e = parse_src(&src).unwrap_err();
        match &e {
            PolicyError::Config { at: a, problem } => {
                assert_eq!(*a, at(MAIN, 2));
                assert_eq!(
                    *problem,
                    LineError::IncludeMissing {
                        path: "/etc/nope.conf".into()
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            e.to_string(),
            "/etc/qemu-ifup-rs.conf:2: included file /etc/nope.conf does not exist"
        );
        assert!(e.is_usage());
    }

    #[test]
    fn unreadable_include() {
        let mut src = MemSource::new();
        src.insert_text(MAIN, "include x.conf\n")
            .insert_error("/etc/x.conf", io::ErrorKind::PermissionDenied);
        let e = parse_src(&src).unwrap_err();
        match &e {
            PolicyError::Config {
                at: a,
                problem: LineError::IncludeUnreadable { path, .. },
            } => {
                assert_eq!(*a, at(MAIN, 1));
                assert_eq!(path, Path::new("/etc/x.conf"));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_usage());
        assert_eq!(
            e.to_string(),
            "/etc/qemu-ifup-rs.conf:1: cannot read included file /etc/x.conf: permission denied"
        );
    }

    #[test]
    fn every_config_problem_is_a_usage_error_with_file_and_line() {
        // A byte that is not UTF-8 in a comment is nothing; in a line, an error at that line.
        let mut src = MemSource::new();
        src.insert_bytes(MAIN, b"# caf\xe9\nbridge br0 # \xff\n");
        assert!(parse_src(&src).unwrap().unwrap().bridge.is_some());
        let mut src = MemSource::new();
        src.insert_bytes(MAIN, b"bridge br0\ntap vm\xff bridge br1\n");
        let e = parse_src(&src).unwrap_err();
        assert_eq!(e.location(), Some(&at(MAIN, 2)));
        assert!(e.is_usage());
        assert_eq!(
            e.to_string(),
            "/etc/qemu-ifup-rs.conf:2: the line is not valid UTF-8"
        );
        // A no-break space does not separate words.
        let e = parse("bridge\u{a0}br0\n").unwrap_err();
        assert!(e.is_usage());
        assert!(matches!(
            e,
            PolicyError::Config {
                problem: LineError::UnknownKeyword { .. },
                ..
            }
        ));
    }

    #[test]
    fn include_loops() {
        // Self-include.
        let mut src = MemSource::new();
        src.insert_text(MAIN, "include qemu-ifup-rs.conf\n");
        let e = parse_src(&src).unwrap_err();
        assert!(
            matches!(
                e,
                PolicyError::Config {
                    problem: LineError::IncludeLoop { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.is_usage());
        assert!(e.to_string().contains("include loop"), "{e}");

        // a -> b -> a, spelled differently.
        let mut src = MemSource::new();
        src.insert_text(MAIN, "include d/b.conf\n")
            .insert_text("/etc/d/b.conf", "include ./../qemu-ifup-rs.conf\n");
        match parse_src(&src) {
            Err(PolicyError::Config {
                at: a,
                problem: LineError::IncludeLoop { .. },
            }) => assert_eq!(a, at("/etc/d/b.conf", 1)),
            other => panic!("{other:?}"),
        }

        // Including the same file twice (not nested) is not a loop.
        let mut src = MemSource::new();
        src.insert_text(MAIN, "include r.conf\ninclude r.conf\n")
            .insert_text("/etc/r.conf", "tap x bridge br0\n");
        assert_eq!(parse_src(&src).unwrap().unwrap().rules.len(), 2);
    }

    #[test]
    fn include_depth() {
        // MAIN includes /i1 ... /iN; depth N is fine up to 8.
        let chain = |n: usize| {
            let mut src = MemSource::new();
            src.insert_text(MAIN, "include /i1\n");
            for i in 1..=n {
                let text = if i == n {
                    "bridge br0\n".to_owned()
                } else {
                    format!("include /i{}\n", i + 1)
                };
                src.insert_text(format!("/i{i}"), &text);
            }
            src
        };
        assert!(parse_src(&chain(8)).unwrap().unwrap().bridge.is_some());
        match parse_src(&chain(9)) {
            Err(PolicyError::Config {
                at: a,
                problem: LineError::IncludeTooDeep { path },
            }) => {
                assert_eq!(a, at("/i8", 1));
                assert_eq!(path, Path::new("/i9"));
            }
            other => panic!("{other:?}"),
        }
    }

    fn meta(uid: u32, mode: u32) -> FileMeta {
        FileMeta { uid, gid: 0, mode }
    }

    #[test]
    fn trust_main_file() {
        let mut src = MemSource::new();
        src.insert(
            MAIN,
            FileData {
                text: "bridge br0\n".into(),
                file: meta(1000, S_IFREG | 0o644),
                dir: MemSource::ROOT_DIR,
            },
        );
        let e = parse_src(&src).unwrap_err();
        assert!(matches!(
            e,
            PolicyError::Untrusted {
                problem: TrustProblem::FileOwner { uid: 1000, .. },
                ..
            }
        ));
        assert!(!e.is_usage());
        assert!(e.to_string().contains("chown root"), "{e}");
        // Trust::Any takes it.
        assert!(parse_config(Path::new(MAIN), &src, Trust::Any)
            .unwrap()
            .is_some());
    }

    #[test]
    fn trust_included_file() {
        let cases = [
            (meta(0, S_IFREG | 0o664), MemSource::ROOT_DIR),
            (meta(0, S_IFREG | 0o666), MemSource::ROOT_DIR),
            (meta(5, S_IFREG | 0o644), MemSource::ROOT_DIR),
            (meta(0, 0o010_644), MemSource::ROOT_DIR),
            (MemSource::ROOT_FILE, meta(0, S_IFDIR | 0o777)),
            (MemSource::ROOT_FILE, meta(0, S_IFDIR | 0o775)),
            (MemSource::ROOT_FILE, meta(1000, S_IFDIR | 0o755)),
        ];
        for (file, dir) in cases {
            let mut src = MemSource::new();
            src.insert_text(MAIN, "include /srv/inc.conf\n").insert(
                "/srv/inc.conf",
                FileData {
                    text: "bridge br0\n".into(),
                    file,
                    dir,
                },
            );
            match parse_src(&src) {
                Err(PolicyError::Untrusted { path, .. }) => {
                    assert_eq!(path, Path::new("/srv/inc.conf"))
                }
                other => panic!("{file:?} {dir:?}: {other:?}"),
            }
            assert!(parse_config(Path::new(MAIN), &src, Trust::Any).is_ok());
        }
    }
}
