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
    /// qemu-ifup as QEMU's bridge helper (`--use-vnet --fd=N --br=BRIDGE`).
    Helper(HelperArgs),
}

/// The arguments of QEMU's and libvirt's bridge-helper protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperArgs {
    /// `--br=BRIDGE`.
    pub bridge: OsString,
    /// `--fd=N`: the unix socket to send the tap's descriptor over.
    pub fd: i32,
    /// `--use-vnet`: give the tap virtio-net headers if the kernel can.
    pub vnet_hdr: bool,
}

/// Whether `arg` is one of the bridge-helper arguments.
fn is_helper_arg(arg: &OsString) -> bool {
    arg.to_str()
        .is_some_and(|a| a == "--use-vnet" || a.starts_with("--fd=") || a.starts_with("--br="))
}

/// `--use-vnet`, `--fd=N` and `--br=BRIDGE`, in any order, each at most once, `--fd` and `--br`
/// required (as qemu-bridge-helper takes them).
fn parse_helper(args: Vec<OsString>) -> Result<Command, Error> {
    let usage = |what: String| {
        Error::Usage(format!(
            "{what} (as a bridge helper: --br=BRIDGE --fd=N [--use-vnet], in any order)"
        ))
    };
    let (mut bridge, mut fd, mut vnet_hdr) = (None, None, false);
    for arg in args {
        let Some(a) = arg.to_str() else {
            return Err(usage(format!("unexpected argument {arg:?}")));
        };
        if a == "--use-vnet" {
            if vnet_hdr {
                return Err(usage("--use-vnet given twice".into()));
            }
            vnet_hdr = true;
        } else if let Some(n) = a.strip_prefix("--fd=") {
            let n = n
                .parse::<i32>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| usage(format!("bad --fd value {n:?}")))?;
            if fd.replace(n).is_some() {
                return Err(usage("--fd given twice".into()));
            }
        } else if let Some(b) = a.strip_prefix("--br=") {
            if bridge.replace(OsString::from(b)).is_some() {
                return Err(usage("--br given twice".into()));
            }
        } else {
            return Err(usage(format!("unexpected argument {a:?}")));
        }
    }
    match (bridge, fd) {
        (Some(bridge), Some(fd)) => Ok(Command::Helper(HelperArgs {
            bridge,
            fd,
            vnet_hdr,
        })),
        (None, _) => Err(usage("--br=BRIDGE is missing".into())),
        (_, None) => Err(usage("--fd=N is missing".into())),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub tap: OsString,
    pub dry_run: bool,
    /// `--config FILE` (qemu-ifup only: qemu-ifdown reads no config).
    pub config: Option<PathBuf>,
}

/// Parse the arguments after argv[0]: options, then exactly one TAP; or, for qemu-ifup, the
/// bridge-helper arguments.
pub fn parse(action: Action, args: impl IntoIterator<Item = OsString>) -> Result<Command, Error> {
    let args: Vec<OsString> = args.into_iter().collect();
    if action == Action::Up && args.iter().any(is_helper_arg) {
        return parse_helper(args);
    }
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
             Attach the tap TAP to its bridge (host-side MAC, MTU, bridge-port options, up), or \
             route its rule's addresses to it, as QEMU's script= does.\n\n\
             Options:\n  \
               -n, --dry-run      print what would be done, change nothing\n  \
               -c, --config FILE  read FILE instead of {config} (also QEMU_IFUP_CONFIG=FILE);\n                     \
                                  refused in privileged mode (a setuid or file-capability\n                     \
                                  install run by a user other than root)\n  \
               -h, --help         this help\n  \
               -V, --version      print the version\n\n\
             The bridge: the first `tap GLOB bridge NAME` rule matching TAP, else the `bridge NAME` line,\n\
             else the first device of the default routes that is a bridge.\n\n\
             As QEMU's bridge helper: qemu-ifup --br=BRIDGE --fd=N [--use-vnet]\n\
             creates a tap, attaches it to BRIDGE and passes it to QEMU over the socket N\n\
             (-netdev bridge,br=BRIDGE,helper=/usr/libexec/qemu-ifup-rs).\n\
             {common}",
            config = crate::CONFIG_PATH,
        ),
        Action::Down => format!(
            "Usage: qemu-ifdown [--dry-run] TAP\n\
             Detach the tap TAP from the bridge it is on (or remove the routes qemu-ifup gave it) \
             and set it down, as QEMU's downscript= does.\n\
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
    fn bridge_helper_arguments_in_any_order() {
        let want = Command::Helper(HelperArgs {
            bridge: "br0".into(),
            fd: 5,
            vnet_hdr: true,
        });
        // QEMU's order, libvirt's order.
        assert_eq!(
            p(Action::Up, &["--use-vnet", "--fd=5", "--br=br0"]).unwrap(),
            want
        );
        assert_eq!(
            p(Action::Up, &["--use-vnet", "--br=br0", "--fd=5"]).unwrap(),
            want
        );
        assert_eq!(
            p(Action::Up, &["--br=br0", "--fd=5"]).unwrap(),
            Command::Helper(HelperArgs {
                bridge: "br0".into(),
                fd: 5,
                vnet_hdr: false,
            })
        );
        for bad in [
            &["--br=br0"][..],
            &["--fd=5"],
            &["--use-vnet"],
            &["--br=br0", "--fd=5", "--fd=6"],
            &["--br=br0", "--br=br1", "--fd=5"],
            &["--use-vnet", "--use-vnet", "--br=br0", "--fd=5"],
            &["--br=br0", "--fd=-1"],
            &["--br=br0", "--fd=x"],
            &["--br=br0", "--fd=", "tap0"],
            &["--br=br0", "--fd=5", "tap0"],
            &["--br=br0", "--fd=5", "--dry-run"],
        ] {
            let e = p(Action::Up, bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            assert!(e.to_string().contains("bridge helper"), "{bad:?}: {e}");
        }
        // qemu-ifdown is no bridge helper.
        assert_eq!(
            p(Action::Down, &["--br=br0", "--fd=5"])
                .unwrap_err()
                .exit_code(),
            2
        );
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
