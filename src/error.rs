use std::path::PathBuf;

use ifup_netlink::NetlinkError;
use ifup_policy::{NameError, PolicyError};
use ifup_privilege::PrivilegeError;

/// The fix for "not permitted", printed with every permission error.
pub const EPERM_HINT: &str = "needs CAP_NET_ADMIN: run QEMU as root, or install the helper setuid root / with setcap cap_net_admin+ep";

/// Everything qemu-ifup / qemu-ifdown can fail with. Each message is one line; `main` prefixes
/// it with `qemu-ifup: error: `.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} (see --help)")]
    Usage(String),
    #[error("{0}")]
    BadTapName(#[source] NameError),
    #[error("{}{source}", tap.as_ref().map(|t| format!("tap {t}: ")).unwrap_or_default())]
    Policy {
        /// The tap, once known (config files are read before the tap is looked at).
        tap: Option<String>,
        #[source]
        source: PolicyError,
    },
    #[error("{0}")]
    Privilege(#[source] PrivilegeError),
    #[error("{what} is not accepted when the helper runs setuid or with file capabilities (caller uid {uid}); the admin's /etc/qemu-ifup-rs.conf applies")]
    ConfigOverride { what: &'static str, uid: u32 },
    #[error("tap {tap}: {source}")]
    Netlink {
        tap: String,
        #[source]
        source: NetlinkError,
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
    #[error("tap {tap}, bridge {bridge}: the bridge does not exist ({origin})")]
    BridgeMissing {
        tap: String,
        bridge: String,
        origin: String,
    },
    #[error("tap {tap}, bridge {bridge}: {bridge} is {what}, not a bridge ({origin})")]
    NotABridge {
        tap: String,
        bridge: String,
        what: String,
        origin: String,
    },
    #[error(
        "tap {tap}, bridge {bridge}: {action} failed: {source}{}",
        hint(source)
    )]
    Kernel {
        tap: String,
        bridge: String,
        action: &'static str,
        #[source]
        source: NetlinkError,
    },
    #[error("tap {tap}, bridge {bridge}: {reason}")]
    Invalid {
        tap: String,
        bridge: String,
        reason: String,
    },
    #[error("tap {tap}, bridge {bridge}: denied: {reason}")]
    Denied {
        tap: String,
        bridge: String,
        reason: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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

fn hint(e: &NetlinkError) -> String {
    if e.is_permission() {
        format!(" ({EPERM_HINT})")
    } else {
        String::new()
    }
}

impl Error {
    /// Name the tap in a config error (the files are read before the tap is looked at).
    pub fn with_tap(self, tap: Option<&ifup_policy::IfName>) -> Error {
        match (self, tap) {
            (Error::Policy { tap: None, source }, Some(t)) => Error::Policy {
                tap: Some(t.to_string()),
                source,
            },
            (e, _) => e,
        }
    }

    /// The exit status of the contract: 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::BadTapName(_) | Error::ConfigOverride { .. } => 2,
            Error::Policy { source, .. } if source.is_usage() => 2,
            _ => 1,
        }
    }

    /// True for policy denials (logged to authpriv at warning).
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            Error::Denied { .. }
                | Error::NotATap { .. }
                | Error::ConfigOverride { .. }
                // Only in privileged mode: a config file others could change refuses the caller.
                | Error::Policy {
                    source: PolicyError::Untrusted { .. },
                    ..
                }
        )
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
}
