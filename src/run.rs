//! The flow of both programs, on one screen: start-up (argv, mode, files, privilege drop),
//! then the run (look up, decide, plan, apply, in `flow.rs`), then the report — written only
//! once the netlink socket is closed and, in privileged mode, every capability is gone.

use std::io::Write;
use std::os::fd::AsFd;

use ifup_netlink::Socket;
use ifup_privilege::Start;

use crate::cli::{self, Action, Command};
use crate::error::{one_line, Error, Hint, EPERM_HINT};
use crate::flow::{self, Outcome};
use crate::log::{self, Level};
use crate::startup::{self, Setup, Target};
use crate::warn;

/// Entry point of both binaries; returns the exit status.
pub fn main(action: Action) -> i32 {
    let (start, result, setup) = run(action);
    let code = report(action, start, result);
    // Only now: in bridge-helper mode the caller's socket closes after our message is written,
    // as libvirt and QEMU expect (they read the message once the socket reports its end).
    drop(setup);
    code
}

/// Everything up to the report. The netlink socket, opened here, is closed when this returns.
fn run(action: Action) -> (Option<Start>, Result<Outcome, Error>, Option<Setup>) {
    let start = match ifup_privilege::start() {
        Ok(s) => s,
        Err(e) => return (None, Err(Error::Privilege(e)), None),
    };
    let setup = match startup::setup(action, start) {
        Ok(s) => s,
        Err(e) => return (Some(start), Err(e), None),
    };
    let result = run_command(action, &setup).map_err(|e| e.with_permission_hint(|| hint(&setup)));
    (Some(setup.start), result, Some(setup))
}

fn run_command(action: Action, setup: &Setup) -> Result<Outcome, Error> {
    let dry_run = matches!(&setup.command, Command::Run(args) if args.dry_run);
    let (target, what) = match &setup.target {
        Target::Nothing if setup.command == Command::Version => {
            return Ok(text(format!(
                "{} (qemu-ifup-rs) {}\n",
                action.program(),
                env!("CARGO_PKG_VERSION")
            )))
        }
        Target::Nothing => return Ok(text(cli::help(action))),
        Target::Tap(tap) => (tap, "tap"),
        Target::Helper { bridge, .. } => (bridge, "bridge"),
    };
    let mut sock = Socket::open().map_err(|source| Error::Netlink {
        tap: format!("{target} ({what})"),
        source,
        hint: Hint::default(),
    })?;
    let note = setup.privileges.as_ref().map(|p| {
        format!(
            "privileges: {p}\n  (what the helper held while it worked; every capability is \
             dropped before anything is printed. cap_bnd, the bounding set, is shrunk only by a \
             setuid-root install: a file-capability install lacks CAP_SETPCAP, and with \
             no_new_privs=1 no later exec could gain anything anyway)"
        )
    });
    match (&setup.target, action) {
        (
            Target::Helper {
                bridge,
                channel,
                vnet_hdr,
            },
            _,
        ) => {
            let (outcome, tap) = flow::helper(
                &mut sock,
                &setup.mode,
                setup.config.as_ref(),
                bridge,
                *vnet_hdr,
            )?;
            // Dropping `tap` (on success, after passing it; on error, now) closes our
            // descriptor: the tap lives on in QEMU, or vanishes.
            channel
                .send_fd(tap.fd.as_fd())
                .map_err(|source| Error::Tun {
                    at: crate::error::Subject::new(&tap.name, Some(bridge.as_str())),
                    source,
                    hint: Hint::default(),
                })?;
            Ok(outcome)
        }
        (Target::Tap(tap), Action::Up) => flow::up(
            &mut sock,
            &setup.mode,
            setup.config.as_ref(),
            &setup.config_desc,
            tap,
            dry_run,
            note.as_deref(),
        ),
        (Target::Tap(tap), Action::Down) => {
            flow::down(&mut sock, &setup.mode, tap, dry_run, note.as_deref())
        }
        (Target::Nothing, _) => Ok(Outcome::default()),
    }
}

fn text(stdout: String) -> Outcome {
    Outcome {
        stdout,
        ..Outcome::default()
    }
}

/// The advice for a "not permitted" error: why the kernel did not grant what the install was
/// meant to, or how to install the helper so it does.
fn hint(setup: &Setup) -> String {
    match setup.start {
        Start::Root => "the kernel refused root: a user namespace or an LSM policy?".to_owned(),
        Start::Privileged { net_admin: true } => {
            "the kernel refused although the helper held CAP_NET_ADMIN: an LSM policy?".to_owned()
        }
        _ => ifup_privilege::why_unprivileged(setup.no_new_privs)
            .map_or_else(|| EPERM_HINT.to_owned(), |w| w.to_string()),
    }
}

/// Drop every capability (privileged mode), then write the output, the warnings and the error,
/// and log. Returns the exit status.
fn report(action: Action, start: Option<Start>, result: Result<Outcome, Error>) -> i32 {
    let prog = action.program();
    let mut syslog = log::Syslog::new(action, nix::unistd::getuid().as_raw());
    if !matches!(start, Some(Start::Root)) {
        if let Err(e) = ifup_privilege::drop_all_capabilities() {
            // Nothing is written while privilege may remain; the admin learns it from syslog.
            syslog.send(
                Level::Err,
                false,
                &format!("failed: {}", one_line(&e.to_string())),
            );
            return 1;
        }
    }
    let result = result.and_then(|outcome| {
        let mut out = std::io::stdout().lock();
        out.write_all(outcome.stdout.as_bytes())
            .and_then(|()| out.flush())
            .map_err(Error::Output)?;
        Ok(outcome)
    });
    match result {
        Ok(outcome) => {
            let mut warnings = Vec::new();
            if let Some(bridge) = &outcome.bridge {
                warnings.extend(
                    warn::bridge_warnings(bridge, warn::Host::read(bridge))
                        .into_iter()
                        .map(|w| format!("bridge {}: {w}", bridge.name)),
                );
            }
            if let Some(f) = outcome.routed {
                warnings.extend(warn::forwarding_warnings(
                    f.ipv4,
                    f.ipv6,
                    warn::read_forwarding(),
                ));
            }
            for w in warnings {
                let w = one_line(&w);
                stderr_line(&format!("{prog}: warning: {w}\n"));
                syslog.send(Level::Warning, false, &format!("warning: {w}"));
            }
            for line in &outcome.changes {
                syslog.send(Level::Info, false, &one_line(line));
            }
            0
        }
        Err(e) => {
            // Messages carry names the kernel returned (which may hold control characters) and
            // text from files and argv: one printable line, whatever they hold.
            stderr_line(&format!("{prog}: error: {}\n", one_line(&e.to_string())));
            let level = if e.is_denial() {
                Level::Warning
            } else {
                Level::Err
            };
            syslog.send(level, e.is_denial(), &one_line(&e.syslog_text()));
            e.exit_code()
        }
    }
}

/// One whole line in one write(2), so it is not interleaved with QEMU's own output. A failure
/// to write to stderr cannot be reported anywhere; the exit status still tells.
fn stderr_line(line: &str) {
    let _ = std::io::stderr().write_all(line.as_bytes());
}
