//! Syslog: every change (daemon, info) and every denial (authpriv, warning), with the real uid.
//! The socket is opened only when there is something to log; no syslog socket is not an error.

use syslog::{Facility, Formatter3164};

use crate::cli::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Err,
}

/// Send one message. `denial` selects facility authpriv; everything else goes to daemon.
pub fn send(action: Action, uid: u32, level: Level, denial: bool, msg: &str) {
    let formatter = Formatter3164 {
        facility: if denial {
            Facility::LOG_AUTHPRIV
        } else {
            Facility::LOG_DAEMON
        },
        hostname: None,
        process: action.program().into(),
        pid: std::process::id(),
    };
    let Ok(mut logger) = syslog::unix(formatter) else {
        return;
    };
    let line = format!("uid={uid} {msg}");
    let _ = match level {
        Level::Info => logger.info(line),
        Level::Warning => logger.warning(line),
        Level::Err => logger.err(line),
    };
}
