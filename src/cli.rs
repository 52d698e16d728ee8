//! Command-line parsing: `TAP`, `--dry-run TAP`, `--config FILE`, `--help`, `--version`.

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
    pub config: Option<PathBuf>,
}

/// Parse the arguments after argv[0]. Options come before TAP; exactly one TAP.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, Error> {
    let mut tap = None;
    let mut dry_run = false;
    let mut config = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-h" | "--help") => return Ok(Command::Help),
            Some("-V" | "--version") => return Ok(Command::Version),
            Some("-n" | "--dry-run") => dry_run = true,
            Some("-c" | "--config") => {
                let file = args
                    .next()
                    .ok_or_else(|| Error::Usage("--config needs a FILE".into()))?;
                if config.replace(PathBuf::from(file)).is_some() {
                    return Err(Error::Usage("--config given twice".into()));
                }
            }
            Some(s) if s.starts_with("--config=") => {
                let file = &s["--config=".len()..];
                if config.replace(PathBuf::from(file)).is_some() {
                    return Err(Error::Usage("--config given twice".into()));
                }
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
    let prog = action.program();
    let what = match action {
        Action::Up => {
            "Attach the tap TAP to its bridge (set its MTU, bring it up), as QEMU's script= does."
        }
        Action::Down => {
            "Detach the tap TAP from its bridge and set it down, as QEMU's downscript= does."
        }
    };
    format!(
        "Usage: {prog} [--dry-run] [--config FILE] TAP\n\
         {what}\n\n\
         Options:\n  \
           -n, --dry-run      print what would be done, change nothing\n  \
           -c, --config FILE  read FILE instead of {config} (also QEMU_IFUP_CONFIG=FILE;\n                     \
                              refused when installed setuid or with file capabilities)\n  \
           -h, --help         this help\n  \
           -V, --version      print the version\n\n\
         The bridge: the first `tap GLOB bridge NAME` rule matching TAP, else the `bridge NAME` line,\n\
         else the device of the default route if it is a bridge.\n\
         Exit status: 0 done or nothing to do, 1 refused or failed, 2 usage or config error.\n\
         Use with QEMU: -netdev tap,id=n0,script=/usr/libexec/qemu-ifup-rs,downscript=/usr/libexec/qemu-ifdown-rs\n",
        config = crate::CONFIG_PATH,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(args: &[&str]) -> Result<Command, Error> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn plain_tap() {
        assert_eq!(
            p(&["tap0"]).unwrap(),
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
            p(&["--dry-run", "--config", "/x", "tap0"]).unwrap(),
            Command::Run(Args {
                tap: "tap0".into(),
                dry_run: true,
                config: Some("/x".into())
            })
        );
        assert_eq!(p(&["--help"]).unwrap(), Command::Help);
        assert_eq!(p(&["--version"]).unwrap(), Command::Version);
    }

    #[test]
    fn usage_errors_exit_2() {
        for bad in [&[][..], &["a", "b"], &["--bogus", "t"], &["--config"]] {
            assert_eq!(p(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }
}
