use std::fmt;

use ifup_netlink::NetlinkError;
use ifup_policy::{NameError, PolicyError};
use ifup_privilege::PrivilegeError;

use crate::decide::Denial;

/// The fix for "not permitted" when the helper is a plain install run by a user.
pub const EPERM_HINT: &str = "needs CAP_NET_ADMIN: run QEMU as root, or install the helper setuid root / with `setcap cap_net_admin+ep`";

/// Everything qemu-ifup / qemu-ifdown can fail with. Each message is one line; `main` prefixes
/// it with `qemu-ifup: error: `.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} (see --help)")]
    Usage(String),
    #[error("{0}")]
    BadTapName(#[source] NameError),
    /// A config problem; `text` is the message as the caller may see it (see `startup.rs`).
    #[error("{}{text}", tap.as_ref().map(|t| format!("tap {t}: ")).unwrap_or_default())]
    Config {
        /// The tap, once known (config files are read before the tap is looked at).
        tap: Option<String>,
        text: String,
        #[source]
        source: Box<PolicyError>,
    },
    #[error("{0}")]
    Privilege(#[source] PrivilegeError),
    #[error("{what} is not accepted in privileged mode (a setuid or file-capability install run by uid {uid}): the admin's {} applies", crate::CONFIG_PATH)]
    ConfigOverride { what: &'static str, uid: u32 },
    /// A lookup failed.
    #[error("tap {tap}: {source}{hint}")]
    Netlink {
        tap: String,
        #[source]
        source: NetlinkError,
        hint: Hint,
    },
    #[error("tap {tap} does not exist (QEMU creates it before running the script: check the -netdev tap,ifname= option)")]
    TapMissing { tap: String },
    #[error("{tap} is {what}, not a tap: refusing to touch it")]
    NotATap { tap: String, what: String },
    #[error(
        "tap {tap}: no bridge to attach to: {why}; name one with a `bridge NAME` line in {config}"
    )]
    NoBridge {
        tap: String,
        why: String,
        config: String,
    },
    #[error("{at}: the bridge does not exist ({origin})")]
    BridgeMissing { at: Subject, origin: String },
    #[error("{at}: it is {what}, not a bridge ({origin})")]
    NotABridge {
        at: Subject,
        what: String,
        origin: String,
    },
    /// The plan cannot be carried out on these links (nothing was changed).
    #[error("{at}: {reason}")]
    Invalid { at: Subject, reason: String },
    #[error("{at}: denied: {reason}")]
    Denied { at: Subject, reason: Denial },
    /// A change failed; `undo` says what became of the tap.
    #[error("{at}: {action} failed: {source}{hint}; {undo}")]
    Failed {
        at: Subject,
        action: &'static str,
        #[source]
        source: NetlinkError,
        undo: Undo,
        hint: Hint,
    },
    /// Creating the tap, or passing it to QEMU, failed (bridge-helper mode).
    #[error("{at}: {source}{hint}")]
    Tun {
        at: Subject,
        #[source]
        source: ifup_tun::TunError,
        hint: Hint,
    },
    /// Writing our output failed (a closed pipe, a full disk).
    #[error("cannot write to standard output: {0}")]
    Output(#[source] std::io::Error),
}

/// What a message is about: the tap and the bridge, as far as they are known (in bridge-helper
/// mode, a refusal comes before there is a tap).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub tap: Option<String>,
    pub bridge: Option<String>,
}

impl Subject {
    pub fn new(tap: impl fmt::Display, bridge: Option<&str>) -> Subject {
        Subject {
            tap: Some(tap.to_string()),
            bridge: bridge.map(str::to_owned),
        }
    }

    pub fn bridge(bridge: impl fmt::Display) -> Subject {
        Subject {
            tap: None,
            bridge: Some(bridge.to_string()),
        }
    }
}

/// `tap X, bridge Y`, `tap X` or `bridge Y`.
impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.tap, &self.bridge) {
            (Some(t), Some(b)) => write!(f, "tap {t}, bridge {b}"),
            (Some(t), None) => write!(f, "tap {t}"),
            (None, Some(b)) => write!(f, "bridge {b}"),
            (None, None) => f.write_str("(no tap)"),
        }
    }
}

/// The advice added to a "not permitted" error: how to give the helper `CAP_NET_ADMIN`, or why
/// an install meant to give it did not. Empty for other errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hint(pub Option<String>);

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(h) => write!(f, " ({h})"),
            None => Ok(()),
        }
    }
}

/// What became of the tap after a change failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    /// Put back as it was before the run.
    Restored,
    /// Undoing failed too.
    Failed,
    /// Nothing to undo (qemu-ifdown).
    None,
}

impl fmt::Display for Undo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Undo::Restored => "the tap was put back as it was",
            Undo::Failed => {
                "putting the tap back as it was failed too: check it with `ip -d link show`"
            }
            Undo::None => "nothing else was changed",
        })
    }
}

/// Longest message printed or logged, in bytes; longer ones are cut and marked with `...`.
const MAX_MESSAGE: usize = 1000;

/// `msg` as one printable line: control characters (newlines, escape sequences, NUL, C1)
/// escaped as `\n`, `\u{1b}`, ..., and cut after [`MAX_MESSAGE`] bytes.
pub(crate) fn one_line(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(MAX_MESSAGE + 8));
    for c in msg.chars() {
        if out.len() >= MAX_MESSAGE {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl Error {
    /// Name the tap in a config error (the files are read before the tap is looked at).
    pub fn with_tap(self, tap: Option<&ifup_policy::IfName>) -> Error {
        match (self, tap) {
            (
                Error::Config {
                    tap: None,
                    text,
                    source,
                },
                Some(t),
            ) => Error::Config {
                tap: Some(t.to_string()),
                text,
                source,
            },
            (e, _) => e,
        }
    }

    /// Whether this is the kernel saying "not permitted".
    fn is_permission(&self) -> bool {
        match self {
            Error::Netlink { source, .. } | Error::Failed { source, .. } => source.is_permission(),
            Error::Tun {
                source: ifup_tun::TunError::Create(e) | ifup_tun::TunError::Open(e),
                ..
            } => matches!(e, nix::errno::Errno::EPERM | nix::errno::Errno::EACCES),
            _ => false,
        }
    }

    /// Add `hint` to a "not permitted" kernel error.
    pub fn with_permission_hint(mut self, hint: impl FnOnce() -> String) -> Error {
        if self.is_permission() {
            if let Error::Netlink { hint: h, .. }
            | Error::Failed { hint: h, .. }
            | Error::Tun { hint: h, .. } = &mut self
            {
                *h = Hint(Some(hint()));
            }
        }
        self
    }

    /// The exit status (qemu-ifup-rs(8), EXIT STATUS): 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::BadTapName(_) | Error::ConfigOverride { .. } => 2,
            Error::Config { source, .. } if source.is_usage() => 2,
            _ => 1,
        }
    }

    /// True for policy denials (logged to authpriv at warning).
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            Error::Denied { .. } | Error::NotATap { .. } | Error::ConfigOverride { .. } // Only in privileged mode: a config file others could change refuses the caller.
        ) || matches!(self, Error::Config { source, .. } if matches!(**source, PolicyError::Untrusted { .. }))
    }

    /// The syslog text: `denied: …` for denials, `failed: …` for the rest, the word not
    /// repeated.
    pub fn syslog_text(&self) -> String {
        match self {
            Error::Denied { at, reason } => format!("denied: {at}: {reason}"),
            e if e.is_denial() => format!("denied: {e}"),
            e => format!("failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_control_characters_and_cuts() {
        assert_eq!(
            one_line("tap vm0, bridge br0: ok"),
            "tap vm0, bridge br0: ok"
        );
        assert_eq!(
            one_line("bridge br\u{1b}[2J\nx\u{0}\u{85}é"),
            "bridge br\\u{1b}[2J\\nx\\u{0}\\u{85}é"
        );
        let long = one_line(&"\u{7}".repeat(5000));
        assert!(long.len() < MAX_MESSAGE + 16, "{}", long.len());
        assert!(long.ends_with("..."));
        assert!(!long.chars().any(char::is_control));
    }

    #[test]
    fn denials_say_denied_once_in_syslog() {
        let e = Error::Denied {
            at: Subject::new("vm0", Some("br0")),
            reason: Denial::AclNoMatch {
                bridge: "br0".into(),
                uid: 1000,
            },
        };
        assert!(e.to_string().starts_with("tap vm0, bridge br0: denied: "));
        let log = e.syslog_text();
        assert!(log.starts_with("denied: tap vm0, bridge br0: "), "{log}");
        assert_eq!(log.matches("denied").count(), 1, "{log}");
        let e = Error::NotATap {
            tap: "tun0".into(),
            what: "a tun device".into(),
        };
        assert_eq!(
            e.to_string(),
            "tun0 is a tun device, not a tap: refusing to touch it"
        );
        assert_eq!(e.syslog_text(), format!("denied: {e}"));
        let e = Error::TapMissing { tap: "x".into() };
        assert!(e.syslog_text().starts_with("failed: "));
    }
}
