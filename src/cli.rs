//! Command-line parsing: `TAP`, `--dry-run TAP`, `--config FILE` (qemu-ifup only), `--help`,
//! `--version`. Parsed once, at start.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::Error;

/// Which of the two programs this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
}

impl Action {
    pub fn program(self) -> &'static str {
        match self {
            Action::Up => "qemu-ifup",
            Action::Down => "qemu-ifdown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Version,
    Run(Args),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub tap: OsString,
    pub dry_run: bool,
    /// `--config FILE` (qemu-ifup only: qemu-ifdown reads no config).
    pub config: Option<PathBuf>,
}

/// Parse the arguments after argv[0]: options, then exactly one TAP.
pub fn parse(action: Action, args: impl IntoIterator<Item = OsString>) -> Result<Command, Error> {
    let mut tap = None;
    let mut dry_run = false;
    let mut config = None;
    let mut args = args.into_iter();
    let mut set_config = |file: OsString| {
        if action == Action::Down {
            return Err(Error::Usage(
                "--config: qemu-ifdown reads no config file (it detaches the tap from whatever \
                 bridge it is on)"
                    .into(),
            ));
        }
        if config.replace(PathBuf::from(file)).is_some() {
            return Err(Error::Usage("--config given twice".into()));
        }
        Ok(())
    };
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-h" | "--help") => return Ok(Command::Help),
            Some("-V" | "--version") => return Ok(Command::Version),
            Some("-n" | "--dry-run") => dry_run = true,
            Some("-c" | "--config") => {
                let file = args
                    .next()
                    .ok_or_else(|| Error::Usage("--config needs a FILE".into()))?;
                set_config(file)?;
            }
            Some(s) if s.starts_with("--config=") => {
                set_config(s["--config=".len()..].into())?;
            }
            Some(s) if s.starts_with('-') && s.len() > 1 => {
                return Err(Error::Usage(format!("unknown option {s:?}")));
            }
            _ => {
                if tap.is_some() {
                    return Err(Error::Usage("exactly one TAP argument is expected".into()));
                }
                tap = Some(arg);
            }
        }
    }
    let tap = tap.ok_or_else(|| Error::Usage("missing TAP argument".into()))?;
    Ok(Command::Run(Args {
        tap,
        dry_run,
        config,
    }))
}

pub fn help(action: Action) -> String {
    let common = "Exit status: 0 done or nothing to do, 1 refused or failed, 2 usage or config \
                  error.\n\
                  Use with QEMU: -netdev tap,id=n0,script=/usr/libexec/qemu-ifup-rs,\
                  downscript=/usr/libexec/qemu-ifdown-rs\n\
                  See qemu-ifup-rs(8) and qemu-ifup-rs.conf(5).\n";
    match action {
        Action::Up => format!(
            "Usage: qemu-ifup [--dry-run] [--config FILE] TAP\n\
             Attach the tap TAP to its bridge (host-side MAC, MTU, bridge-port options, up), as \
             QEMU's script= does.\n\n\
             Options:\n  \
               -n, --dry-run      print what would be done, change nothing\n  \
               -c, --config FILE  read FILE instead of {config} (also QEMU_IFUP_CONFIG=FILE);\n                     \
                                  refused in privileged mode (a setuid or file-capability\n                     \
                                  install run by a user other than root)\n  \
               -h, --help         this help\n  \
               -V, --version      print the version\n\n\
             The bridge: the first `tap GLOB bridge NAME` rule matching TAP, else the `bridge NAME` line,\n\
             else the first device of the default routes that is a bridge.\n\
             {common}",
            config = crate::CONFIG_PATH,
        ),
        Action::Down => format!(
            "Usage: qemu-ifdown [--dry-run] TAP\n\
             Detach the tap TAP from the bridge it is on and set it down, as QEMU's downscript= \
             does.\n\
             It reads no config file. A TAP that no longer exists is success.\n\n\
             Options:\n  \
               -n, --dry-run      print what would be done, change nothing\n  \
               -h, --help         this help\n  \
               -V, --version      print the version\n\n\
             {common}"
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(action: Action, args: &[&str]) -> Result<Command, Error> {
        parse(action, args.iter().map(OsString::from))
    }

    #[test]
    fn plain_tap() {
        assert_eq!(
            p(Action::Up, &["tap0"]).unwrap(),
            Command::Run(Args {
                tap: "tap0".into(),
                dry_run: false,
                config: None
            })
        );
    }

    #[test]
    fn options() {
        assert_eq!(
            p(Action::Up, &["--dry-run", "--config", "/x", "tap0"]).unwrap(),
            Command::Run(Args {
                tap: "tap0".into(),
                dry_run: true,
                config: Some("/x".into())
            })
        );
        for action in [Action::Up, Action::Down] {
            assert_eq!(p(action, &["--help"]).unwrap(), Command::Help);
            assert_eq!(p(action, &["--version"]).unwrap(), Command::Version);
        }
    }

    #[test]
    fn usage_errors_exit_2() {
        for bad in [&[][..], &["a", "b"], &["--bogus", "t"], &["--config"]] {
            assert_eq!(p(Action::Up, bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        // qemu-ifdown reads no config: --config is a usage error, whatever the file.
        for bad in [&["-c", "/nonexistent", "t"][..], &["--config=/x", "t"]] {
            let e = p(Action::Down, bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            assert!(e.to_string().contains("reads no config"), "{e}");
        }
    }

    #[test]
    fn help_says_what_each_program_uses() {
        let down = help(Action::Down);
        assert!(!down.contains("--config"), "{down}");
        assert!(!down.contains("default route"), "{down}");
        assert!(down.starts_with("Usage: qemu-ifdown [--dry-run] TAP\n"));
        let up = help(Action::Up);
        assert!(up.contains("--config FILE"));
        assert!(up.contains("privileged mode"));
    }
}
