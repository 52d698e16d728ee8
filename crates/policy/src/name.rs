//! Validated Linux interface names.

use std::ffi::OsStr;
use std::fmt;
use std::str::FromStr;

use crate::error::quote;

/// The longest interface name in bytes (the kernel's `IFNAMSIZ` is 16, counting the NUL).
pub const MAX_NAME_LEN: usize = 15;

/// A validated Linux interface name: 1..=15 bytes of UTF-8, no `/`, no whitespace, no control
/// characters (any [`char::is_control`], so NUL, DEL and C1 too), not `.` or `..`, not starting
/// with `-`. `:` is allowed (the man page does not forbid it; the kernel will simply not find
/// such a device).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(String);

/// Why a string is not a valid interface name. Names are shown escaped and quoted, so hostile
/// bytes never reach a terminal raw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid interface name \"\": empty")]
    Empty,
    #[error(
        "invalid interface name {}: {len} bytes long, at most {} allowed",
        quote(.name),
        MAX_NAME_LEN
    )]
    TooLong { name: String, len: usize },
    #[error("invalid interface name {}: contains {}", quote(.name), describe(.ch))]
    BadChar { name: String, ch: char },
    #[error("invalid interface name {}: \".\" and \"..\" are not allowed", quote(.name))]
    Dot { name: String },
    #[error("invalid interface name {}: must not start with '-'", quote(.name))]
    Dash { name: String },
    #[error("invalid interface name: not valid UTF-8")]
    NotUtf8,
}

fn describe(ch: &char) -> String {
    if ch.is_whitespace() {
        "whitespace".to_owned()
    } else if *ch == '/' {
        "'/'".to_owned()
    } else {
        format!("control character {ch:?}")
    }
}

fn bad_char(ch: char) -> bool {
    ch == '/' || ch.is_whitespace() || ch.is_control()
}

impl IfName {
    /// Validate `s` as an interface name.
    pub fn parse(s: &str) -> Result<IfName, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong {
                name: s.to_owned(),
                len: s.len(),
            });
        }
        if s == "." || s == ".." {
            return Err(NameError::Dot { name: s.to_owned() });
        }
        if let Some(ch) = s.chars().find(|&c| bad_char(c)) {
            return Err(NameError::BadChar {
                name: s.to_owned(),
                ch,
            });
        }
        if s.starts_with('-') {
            return Err(NameError::Dash { name: s.to_owned() });
        }
        Ok(IfName(s.to_owned()))
    }

    /// Validate an OS string (such as an argv element); anything not UTF-8 is an error.
    pub fn parse_os(s: &OsStr) -> Result<IfName, NameError> {
        match s.to_str() {
            Some(s) => IfName::parse(s),
            None => Err(NameError::NotUtf8),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for IfName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for IfName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IfName::parse(s)
    }
}

impl TryFrom<&str> for IfName {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        IfName::parse(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn err(s: &str) -> NameError {
        IfName::parse(s).expect_err(s)
    }

    #[test]
    fn valid_names() {
        for s in [
            "tap0",
            "a",
            "br-lab",
            "vm.lab",
            "eth0:1",
            "123456789012345",
            "tap_1@x",
            "é",
            "ünïcødé",
            "a-",
            ".a",
            "...",
        ] {
            let n = IfName::parse(s).unwrap();
            assert_eq!(n.as_str(), s);
            assert_eq!(n.to_string(), s);
            assert_eq!(s.parse::<IfName>().unwrap(), n);
        }
    }

    #[test]
    fn fifteen_bytes_of_multibyte_ok_sixteen_not() {
        // 5 x 3-byte chars = 15 bytes.
        assert!(IfName::parse("€€€€€").is_ok());
        // 8 x 2-byte chars = 16 bytes, only 8 characters.
        assert_eq!(
            err("éééééééé"),
            NameError::TooLong {
                name: "éééééééé".into(),
                len: 16
            }
        );
    }

    #[test]
    fn empty() {
        assert_eq!(err(""), NameError::Empty);
    }

    #[test]
    fn sixteen_bytes() {
        let s = "1234567890123456";
        assert_eq!(
            err(s),
            NameError::TooLong {
                name: s.into(),
                len: 16
            }
        );
        assert!(err(s).to_string().contains("16 bytes"));
    }

    #[test]
    fn slash() {
        assert_eq!(
            err("a/b"),
            NameError::BadChar {
                name: "a/b".into(),
                ch: '/'
            }
        );
        assert!(matches!(err("/"), NameError::BadChar { ch: '/', .. }));
    }

    #[test]
    fn whitespace() {
        for (s, ch) in [
            ("x y", ' '),
            ("x\ty", '\t'),
            ("tap0\n", '\n'),
            ("\r", '\r'),
            ("a\u{a0}b", '\u{a0}'),
            ("a\u{2003}", '\u{2003}'),
            (" x", ' '),
        ] {
            assert_eq!(err(s), NameError::BadChar { name: s.into(), ch }, "{s:?}");
        }
        assert_eq!(
            err("x y").to_string(),
            r#"invalid interface name "x y": contains whitespace"#
        );
    }

    #[test]
    fn control_chars() {
        for ch in ['\0', '\u{1}', '\u{1b}', '\u{7f}', '\u{80}', '\u{9b}'] {
            let s = format!("ab{ch}c");
            assert_eq!(
                err(&s),
                NameError::BadChar {
                    name: s.clone(),
                    ch
                }
            );
            let msg = err(&s).to_string();
            assert!(!msg.chars().any(char::is_control), "{msg:?}");
            assert!(msg.contains("control character"), "{msg}");
        }
    }

    #[test]
    fn escape_sequences_are_escaped_in_messages() {
        let msg = err("\u{1b}[31mred").to_string();
        assert!(!msg.contains('\u{1b}'));
        assert!(msg.contains(r"\u{1b}"), "{msg}");
        // Bidi override: not a control character, so allowed by the rules, but escaped when a
        // message quotes it.
        let long = "\u{202e}abcdefghijklmnop";
        let msg = err(long).to_string();
        assert!(!msg.contains('\u{202e}'), "{msg}");
    }

    #[test]
    fn dots() {
        assert_eq!(err("."), NameError::Dot { name: ".".into() });
        assert_eq!(err(".."), NameError::Dot { name: "..".into() });
    }

    #[test]
    fn dash() {
        assert_eq!(err("-x"), NameError::Dash { name: "-x".into() });
        assert_eq!(err("-"), NameError::Dash { name: "-".into() });
        assert_eq!(
            err("--help"),
            NameError::Dash {
                name: "--help".into()
            }
        );
    }

    #[test]
    fn not_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let os = OsStr::from_bytes(b"tap\xff");
        assert_eq!(IfName::parse_os(os), Err(NameError::NotUtf8));
        assert_eq!(
            IfName::parse_os(OsStr::new("tap0")).unwrap().as_str(),
            "tap0"
        );
        assert_eq!(
            IfName::parse_os(OsStr::new("a b")),
            Err(NameError::BadChar {
                name: "a b".into(),
                ch: ' '
            })
        );
    }

    #[test]
    fn long_names_are_cut_in_messages() {
        let s = "x".repeat(10_000);
        let msg = err(&s).to_string();
        assert!(msg.len() < 200, "{msg}");
        assert!(msg.contains("10000 bytes"));
    }
}
