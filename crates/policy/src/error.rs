//! The crate's error type and the helpers that keep hostile bytes out of messages.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::Location;
use crate::glob::GlobError;
use crate::name::NameError;

/// Roughly the longest quoted text (in bytes, after escaping) in a message; longer text is cut
/// and marked with `...`.
const QUOTE_MAX: usize = 80;

/// `s` in double quotes with Rust escaping (control, format and other non-printable characters
/// escaped as `\u{..}`), cut after about [`QUOTE_MAX`] bytes, so that text from argv or a file
/// never reaches a terminal raw and a message stays one short line.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if out.len() > QUOTE_MAX {
            out.push_str("\"...");
            return out;
        }
        push_escaped(&mut out, c);
    }
    out.push('"');
    out
}

/// One character as a message may show it: escaped unless it is printable (quotes escaped).
pub(crate) fn push_escaped(out: &mut String, c: char) {
    match c {
        '\'' => out.push(c),
        _ => out.extend(c.escape_debug()),
    }
}

/// A character for a message, escaped, in single quotes.
pub(crate) fn quote_char(c: char) -> String {
    format!("{c:?}")
}

/// A path for a message: lossy UTF-8, with control and other non-printable characters escaped.
pub(crate) fn show_path(path: &Path) -> String {
    let lossy = path.to_string_lossy();
    let mut out = String::with_capacity(lossy.len());
    for ch in lossy.chars() {
        // Printable characters (quotes and backslashes included) stay; the rest is escaped.
        if matches!(ch, '"' | '\'' | '\\') || ch.escape_debug().len() == 1 {
            out.push(ch);
        } else {
            out.extend(ch.escape_debug());
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// The directory holding `path`, for messages (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A bad interface name given on the command line (TAP).
    #[error(transparent)]
    Name(#[from] NameError),

    /// A problem on one line of the config file (or a file it includes).
    #[error("{at}: {problem}")]
    Config { at: Location, problem: LineError },

    /// A problem on one line of the ACL (or a file it includes).
    #[error("{at}: {problem}")]
    Acl { at: Location, problem: LineError },

    /// The config file exists but could not be read.
    #[error("cannot read {}: {source}", show_path(.path))]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The ACL exists but could not be read.
    #[error("cannot read {}: {source}", show_path(.path))]
    AclRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A file (or its directory) may be changed by someone other than root, so it cannot be
    /// trusted in privileged mode.
    #[error("{}: not trusted in privileged mode: {problem}", show_path(.path))]
    Untrusted {
        path: PathBuf,
        problem: TrustProblem,
    },

    /// The ACL does not exist: no bridge is allowed to unprivileged callers.
    #[error(
        "{} does not exist, so no bridge is allowed to unprivileged users \
         (add a line \"allow BRIDGE\" to it)",
        show_path(.path)
    )]
    AclMissing { path: PathBuf },
}

impl PolicyError {
    /// True when the exit status is 2 (usage; qemu-ifup-rs(8), EXIT STATUS): a bad TAP name, and every problem with
    /// the config file or the files it includes (syntax, bad value, a line that is not UTF-8, a
    /// missing, unreadable or looping include, an unreadable config). False (exit status 1) for
    /// a file others could change (a policy refusal in privileged mode) and every ACL problem
    /// (an ACL problem is a policy denial).
    pub fn is_usage(&self) -> bool {
        match self {
            PolicyError::Name(_) | PolicyError::Config { .. } | PolicyError::ConfigRead { .. } => {
                true
            }
            PolicyError::Acl { .. }
            | PolicyError::AclRead { .. }
            | PolicyError::Untrusted { .. }
            | PolicyError::AclMissing { .. } => false,
        }
    }

    /// The file and line the error is about, if it is about one line.
    pub fn location(&self) -> Option<&Location> {
        match self {
            PolicyError::Config { at, .. } | PolicyError::Acl { at, .. } => Some(at),
            _ => None,
        }
    }
}

/// What is wrong on one line of the config file or the ACL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("unknown keyword {} (expected {expected})", quote(.word))]
    UnknownKeyword {
        word: String,
        expected: &'static str,
    },
    #[error(
        "unknown option {} (expected mtu, vlan, tagged, isolated, hairpin, learning, flood, tap-mac, proxy-arp)",
        quote(.option)
    )]
    UnknownOption { option: String },
    #[error("option \"{option}\" is a bridge-port option: a routed tap is on no bridge")]
    NotForRoute { option: &'static str },
    #[error("option \"proxy-arp\" is for a routed tap (`tap GLOB route ...`), not a bridged one")]
    NotForBridge,
    #[error("{} has bits set beyond its prefix length: a route goes to a network (did you mean the network address?)", quote(.value))]
    HostBits { value: String },
    #[error("{} is listed twice", quote(.value))]
    Duplicate { value: String },
    #[error("a second create-bridge line for {name} (the first is at {first})")]
    SecondCreateBridge { name: String, first: Location },
    #[error("option \"{option}\" needs a value ({expected})")]
    MissingValue {
        option: &'static str,
        expected: &'static str,
    },
    #[error("bad value {} for option \"{option}\" (expected {expected})", quote(.value))]
    BadValue {
        option: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("option \"{option}\" given twice")]
    DuplicateOption { option: &'static str },
    #[error("\"{keyword}\" needs {what}")]
    MissingArgument {
        keyword: &'static str,
        what: &'static str,
    },
    #[error("expected \"bridge NAME\" or \"route LIST\" after the glob of \"tap\", found {}", quote(.found))]
    ExpectedBridge { found: String },
    #[error("unexpected {} after {after}", quote(.found))]
    Unexpected { found: String, after: &'static str },
    #[error("{0}")]
    BadName(NameError),
    #[error("invalid glob {}: {reason}", quote(.glob))]
    BadGlob { glob: String, reason: GlobError },
    #[error("second \"bridge\" line (the first is at {first})")]
    SecondBridge { first: Location },
    #[error("vlan {vlan} is also listed in tagged (a VLAN is either untagged or tagged)")]
    VlanAlsoTagged { vlan: u16 },
    #[error("include loop: {} is already being read", show_path(.path))]
    IncludeLoop { path: PathBuf },
    #[error(
        "include of {} nested more than {} deep",
        show_path(.path),
        crate::MAX_INCLUDE_DEPTH
    )]
    IncludeTooDeep { path: PathBuf },
    #[error("included file {} does not exist", show_path(.path))]
    IncludeMissing { path: PathBuf },
    #[error("cannot read included file {}: {reason}", show_path(.path))]
    IncludeUnreadable { path: PathBuf, reason: String },
    #[error("the line is not valid UTF-8")]
    NotUtf8,
}

/// Why a file may not be trusted in privileged mode. The message ends with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustProblem {
    #[error("it is a symbolic link, which privileged mode does not follow (its target's owner and directory would go unchecked); put the file itself there")]
    Symlink,
    #[error(
        "it is not a regular file (mode {mode:06o}); replace it with a regular file owned by root"
    )]
    NotRegular { mode: u32 },
    #[error("it is owned by uid {uid}, not root; fix: chown root {} && chmod go-w {}", show_path(.file), show_path(.file))]
    FileOwner { file: PathBuf, uid: u32 },
    #[error("it is writable by group or others (mode {:04o}); fix: chown root {} && chmod go-w {}", .mode & 0o7777, show_path(.file), show_path(.file))]
    FileWritable { file: PathBuf, mode: u32 },
    #[error("its directory {} is owned by uid {uid}, not root; fix: chown root {} && chmod go-w {}", show_path(.dir), show_path(.dir), show_path(.dir))]
    DirOwner { dir: PathBuf, uid: u32 },
    #[error("its directory {} is writable by group or others (mode {:04o}); fix: chown root {} && chmod go-w {}", show_path(.dir), .mode & 0o7777, show_path(.dir), show_path(.dir))]
    DirWritable { dir: PathBuf, mode: u32 },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn quote_escapes_and_cuts() {
        assert_eq!(quote("br0"), "\"br0\"");
        assert_eq!(quote("a\"b\\c'd"), r#""a\"b\\c'd""#);
        assert_eq!(quote("\u{1b}[2J"), r#""\u{1b}[2J""#);
        assert_eq!(quote("\u{202e}x"), r#""\u{202e}x""#);
        let long = quote(&"\u{1d}".repeat(1000));
        assert!(long.len() < QUOTE_MAX + 20, "{long}");
        assert!(long.ends_with("\"..."));
        assert!(!long.chars().any(char::is_control));
        assert_eq!(quote_char('\u{5}'), r"'\u{5}'");
    }

    #[test]
    fn show_path_escapes() {
        assert_eq!(
            show_path(Path::new("/etc/my file.conf")),
            "/etc/my file.conf"
        );
        assert_eq!(show_path(Path::new("/etc/\u{1b}x\n")), r"/etc/\u{1b}x\n");
        assert_eq!(show_path(Path::new("/etc/é\"'\\")), "/etc/é\"'\\");
        assert_eq!(show_path(Path::new("")), ".");
    }

    #[test]
    fn glob_errors_escape() {
        let msg = GlobError::ReversedRange {
            from: '\u{e5}',
            to: '\u{5}',
        }
        .to_string();
        assert_eq!(msg, r"reversed range 'å'-'\u{5}'");
    }
}
