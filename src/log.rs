//! Syslog: every change (daemon, info) and every denial (authpriv, warning), with the real uid.
//! The socket is opened only when there is something to log; no syslog socket is not an error.
//!
//! One datagram per message in the BSD format `<PRI>TAG[PID]: MESSAGE`, written by hand: no
//! timestamp and no hostname, so the syslog daemon (journald, rsyslog) stamps the message with its
//! own clock and time zone, as it does for any local sender that omits them.

use std::os::unix::net::UnixDatagram;

use crate::cli::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Err,
}

/// `LOG_DAEMON` and `LOG_AUTHPRIV` from `<syslog.h>`, already shifted.
const LOG_DAEMON: u32 = 3 << 3;
const LOG_AUTHPRIV: u32 = 10 << 3;

/// Where the syslog daemon (journald, rsyslog) listens on Linux.
const SOCKET: &str = "/dev/log";

/// The datagram for one message.
fn datagram(action: Action, pid: u32, uid: u32, level: Level, denial: bool, msg: &str) -> String {
    let facility = if denial { LOG_AUTHPRIV } else { LOG_DAEMON };
    let severity = match level {
        Level::Err => 3,
        Level::Warning => 4,
        Level::Info => 6,
    };
    format!(
        "<{}>{}[{pid}]: uid={uid} {msg}",
        facility | severity,
        action.program()
    )
}

/// The run's syslog connection: opened at the first message, reused for the rest.
pub struct Syslog {
    action: Action,
    uid: u32,
    sock: Option<Option<UnixDatagram>>,
}

impl Syslog {
    pub fn new(action: Action, uid: u32) -> Syslog {
        Syslog {
            action,
            uid,
            sock: None,
        }
    }

    /// Send one message. `denial` selects facility authpriv; everything else goes to daemon.
    pub fn send(&mut self, level: Level, denial: bool, msg: &str) {
        let sock = self.sock.get_or_insert_with(|| {
            let sock = UnixDatagram::unbound().ok()?;
            sock.connect(SOCKET).ok()?;
            Some(sock)
        });
        if let Some(sock) = sock {
            let line = datagram(
                self.action,
                std::process::id(),
                self.uid,
                level,
                denial,
                msg,
            );
            let _ = sock.send(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_priority() {
        assert_eq!(
            datagram(Action::Up, 42, 1000, Level::Info, false, "tap0 -> br0"),
            "<30>qemu-ifup[42]: uid=1000 tap0 -> br0"
        );
        assert_eq!(
            datagram(Action::Down, 7, 1000, Level::Warning, true, "denied: x"),
            "<84>qemu-ifdown[7]: uid=1000 denied: x"
        );
        assert_eq!(
            datagram(Action::Up, 7, 0, Level::Err, false, "failed: y"),
            "<27>qemu-ifup[7]: uid=0 failed: y"
        );
    }
}
