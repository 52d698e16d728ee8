//! The flow of both programs: mode, arguments, files, privilege drop, plan, apply, report.

use std::io::Write;
use std::path::{Path, PathBuf};

use ifup_netlink::{errno, Link, LinkChange, NetlinkError, Socket};
use ifup_policy::{
    parse_acl, parse_config, Acl, AclVerdict, Caller, Config, IfName, PolicyError, Trust,
};
use ifup_privilege::Ids;

use crate::cli::{self, Action, Command};
use crate::error::{one_line, Error};
use crate::files::{self, SystemFiles};
use crate::log::{self, Level};
use crate::plan;
use crate::{ACL_PATH, CONFIG_ENV, CONFIG_PATH};

/// Who runs us, decided once at start.
enum Mode {
    /// Real uid 0, or a caller without gained privilege: everything allowed, no ACL.
    Trusted,
    /// Setuid root or file capabilities, called by `caller`: the contract's rules apply.
    Privileged {
        caller: Ids,
        acl: Result<Acl, String>,
    },
}

/// What the run did, for syslog.
#[derive(Default)]
struct Done {
    /// One line per change made; empty when there was nothing to do.
    changes: Vec<String>,
    /// Things that do not stop us but commonly break the guest's network.
    warnings: Vec<String>,
}

/// Entry point of both binaries; returns the exit status.
pub fn main(action: Action) -> i32 {
    let prog = action.program();
    let mut syslog = log::Syslog::new(action, nix::unistd::getuid().as_raw());
    match run(action) {
        Ok(done) => {
            for w in &done.warnings {
                let w = one_line(w);
                stderr_line(&format!("{prog}: warning: {w}\n"));
                syslog.send(Level::Warning, false, &format!("warning: {w}"));
            }
            for line in &done.changes {
                syslog.send(Level::Info, false, &one_line(line));
            }
            0
        }
        Err(e) => {
            // Messages carry names the kernel returned (which may hold control characters) and
            // text from files and argv: one printable line, whatever they hold.
            let msg = one_line(&e.to_string());
            stderr_line(&format!("{prog}: error: {msg}\n"));
            if e.is_denial() {
                syslog.send(Level::Warning, true, &format!("denied: {msg}"));
            } else {
                syslog.send(Level::Err, false, &format!("failed: {msg}"));
            }
            e.exit_code()
        }
    }
}

/// One whole line in one write(2), so it is not interleaved with QEMU's own output.
fn stderr_line(line: &str) {
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn run(action: Action) -> Result<Done, Error> {
    let privileged = ifup_privilege::privileged_mode();
    // In privileged mode the environment is hostile: note only whether the config override is
    // present (to refuse it), then clear it before anything else can read it.
    let env_config = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty());
    if privileged {
        ifup_privilege::clear_environment();
    }
    let parsed = cli::parse(std::env::args_os().skip(1));
    // For messages about the config only; the tap is validated (and refused) below.
    let tap_name = match &parsed {
        Ok(Command::Run(args)) => IfName::parse_os(&args.tap).ok(),
        _ => None,
    };
    // In privileged mode, read what needs privilege (config, ACL), then drop it before anything
    // else happens: before printing help, an error, or touching a link.
    let privileged_files = if privileged {
        let ids = ifup_privilege::real_ids().map_err(Error::Privilege)?;
        let files = match &parsed {
            Ok(Command::Run(args)) => read_privileged(action, args, env_config.is_some(), &ids),
            _ => Ok((None, Ok(Acl::default()))),
        };
        ifup_privilege::drop_to_caller(&ids).map_err(Error::Privilege)?;
        let (config, acl) = files.map_err(|e| e.with_tap(tap_name.as_ref()))?;
        Some((ids, config, acl))
    } else {
        None
    };
    let args = match parsed? {
        Command::Help => {
            print!("{}", cli::help(action));
            return Ok(Done::default());
        }
        Command::Version => {
            println!(
                "{} (qemu-ifup-rs) {}",
                action.program(),
                env!("CARGO_PKG_VERSION")
            );
            return Ok(Done::default());
        }
        Command::Run(args) => args,
    };
    let tap = IfName::parse_os(&args.tap).map_err(Error::BadTapName)?;

    let (mode, config, config_desc) = match privileged_files {
        Some((caller, config, acl)) => (
            Mode::Privileged { caller, acl },
            config,
            CONFIG_PATH.to_string(),
        ),
        None => {
            let (path, explicit) = match (args.config.clone(), env_config) {
                (Some(p), _) => (p, true),
                (None, Some(p)) => (PathBuf::from(p), true),
                (None, None) => (PathBuf::from(CONFIG_PATH), false),
            };
            let config = match action {
                Action::Up => load_config(&path, explicit, Trust::Any)
                    .map_err(|e| e.with_tap(tap_name.as_ref()))?,
                Action::Down => None,
            };
            (Mode::Trusted, config, path.display().to_string())
        }
    };

    let mut sock = Socket::open().map_err(|source| Error::Netlink {
        tap: tap.to_string(),
        source,
    })?;
    let ctx = Ctx {
        tap: &tap,
        mode: &mode,
        dry_run: args.dry_run,
    };
    match action {
        Action::Up => ctx.up(&mut sock, config.as_ref(), &config_desc),
        Action::Down => ctx.down(&mut sock),
    }
}

/// In privileged mode, still holding privilege: refuse config overrides, then read the config
/// (qemu-ifup only) and the ACL with the ownership checks. An unusable ACL is kept as the reason
/// every bridge is denied.
fn read_privileged(
    action: Action,
    args: &cli::Args,
    env_config: bool,
    ids: &Ids,
) -> Result<(Option<Config>, Result<Acl, String>), Error> {
    if args.config.is_some() {
        return Err(Error::ConfigOverride {
            what: "--config",
            uid: ids.uid,
        });
    }
    if env_config {
        return Err(Error::ConfigOverride {
            what: CONFIG_ENV,
            uid: ids.uid,
        });
    }
    let config = match action {
        Action::Up => load_config(Path::new(CONFIG_PATH), false, Trust::RootOwnedOnly)?,
        Action::Down => None,
    };
    let caller = Caller {
        uid: ids.uid,
        gid: ids.gid,
        groups: ids.groups.clone(),
    };
    // A line of an include the caller may not read is not quoted back to the caller: the
    // location is enough for the admin, who can read the file.
    let acl = parse_acl(Path::new(ACL_PATH), &SystemFiles, &caller).map_err(|e| match e {
        PolicyError::Acl { at, .. } if !files::caller_can_read(&caller, &at.file) => {
            format!("{at}: invalid line")
        }
        other => other.to_string(),
    });
    Ok((config, acl))
}

fn load_config(path: &Path, explicit: bool, trust: Trust) -> Result<Option<Config>, Error> {
    match parse_config(path, &SystemFiles, trust)
        .map_err(|source| Error::Policy { tap: None, source })?
    {
        Some(c) => Ok(Some(c)),
        None if explicit => Err(Error::Usage(format!(
            "config file {} does not exist",
            path.display()
        ))),
        None => Ok(None),
    }
}

struct Ctx<'a> {
    tap: &'a IfName,
    mode: &'a Mode,
    dry_run: bool,
}

impl Ctx<'_> {
    fn t(&self) -> String {
        self.tap.to_string()
    }

    fn netlink(&self, source: NetlinkError) -> Error {
        Error::Netlink {
            tap: self.t(),
            source,
        }
    }

    fn denied(&self, bridge: &str, reason: impl Into<String>) -> Error {
        Error::Denied {
            tap: self.t(),
            bridge: bridge.to_string(),
            reason: reason.into(),
        }
    }

    /// The tap, which must exist and be a tap (not a tun, veth, bridge, loopback, NIC).
    fn lookup_tap(&self, sock: &mut Socket) -> Result<Option<Link>, Error> {
        let link = sock
            .link_by_name(self.tap.as_str())
            .map_err(|e| self.netlink(e))?;
        match link {
            Some(l) if !l.is_tap() => Err(Error::NotATap {
                tap: self.t(),
                what: l.describe(),
            }),
            other => Ok(other),
        }
    }

    /// In privileged mode: is the tap the caller's (owner uid, or group among the caller's)?
    fn check_owner(&self, tap: &Link, bridge: &str) -> Result<(), Error> {
        let Mode::Privileged { caller, .. } = self.mode else {
            return Ok(());
        };
        let tun = tap.tun.unwrap_or(ifup_netlink::TunInfo {
            tap: true,
            owner: None,
            group: None,
            persist: false,
        });
        let by_owner = tun.owner == Some(caller.uid);
        let by_group = tun
            .group
            .is_some_and(|g| g == caller.gid || caller.groups.contains(&g));
        if by_owner || by_group {
            return Ok(());
        }
        let whose = match (tun.owner, tun.group) {
            (None, None) => "it has no owner or group (root's only)".to_string(),
            (Some(u), None) => format!("it belongs to uid {u}"),
            (None, Some(g)) => format!("it belongs to group {g}"),
            (Some(u), Some(g)) => format!("it belongs to uid {u} / group {g}"),
        };
        Err(self.denied(
            bridge,
            format!("the tap is not the caller's (uid {}): {whose}", caller.uid),
        ))
    }

    /// In privileged mode: does the ACL allow this bridge to the caller?
    fn check_acl(&self, bridge: &IfName) -> Result<(), Error> {
        let Mode::Privileged { caller, acl } = self.mode else {
            return Ok(());
        };
        match acl {
            Ok(acl) => match acl.verdict(bridge) {
                AclVerdict::Allowed { .. } => Ok(()),
                AclVerdict::Denied { at } => Err(self.denied(
                    bridge.as_str(),
                    format!(
                        "bridge {bridge} is denied to uid {} by {}:{}",
                        caller.uid,
                        at.file.display(),
                        at.line
                    ),
                )),
                AclVerdict::NoMatch => Err(self.denied(
                    bridge.as_str(),
                    format!(
                        "{ACL_PATH} does not allow bridge {bridge} to uid {} (the admin can add `allow {bridge}`)",
                        caller.uid
                    ),
                )),
            },
            Err(e) => Err(self.denied(
                bridge.as_str(),
                format!("the ACL cannot be used, so everything is denied: {e}"),
            )),
        }
    }

    fn up(
        &self,
        sock: &mut Socket,
        config: Option<&Config>,
        config_desc: &str,
    ) -> Result<Done, Error> {
        let tap = self
            .lookup_tap(sock)?
            .ok_or_else(|| Error::TapMissing { tap: self.t() })?;
        let choice = config.and_then(|c| c.choose(self.tap));
        let (bridge, options, origin) = match choice {
            Some(c) => {
                let origin = c.origin.to_string();
                let link = sock
                    .link_by_name(c.bridge.as_str())
                    .map_err(|e| self.netlink(e))?
                    .ok_or_else(|| Error::BridgeMissing {
                        tap: self.t(),
                        bridge: c.bridge.to_string(),
                        origin: origin.clone(),
                    })?;
                (link, c.options, origin)
            }
            None => {
                let why_none = |why: String| Error::NoBridge {
                    tap: self.t(),
                    why,
                    config: config_desc.to_string(),
                };
                let dev = sock
                    .default_route_device()
                    .map_err(|e| self.netlink(e))?
                    .ok_or_else(|| {
                        why_none("no config rule matches and there is no default route".into())
                    })?;
                let link = sock
                    .link_by_index(dev)
                    .map_err(|e| self.netlink(e))?
                    .ok_or_else(|| why_none("the default route's device vanished".into()))?;
                if !link.is_bridge() {
                    return Err(why_none(format!(
                        "no config rule matches and the default route goes via {}, which is not a bridge",
                        link.name
                    )));
                }
                (
                    link,
                    Default::default(),
                    "the bridge of the default route".to_string(),
                )
            }
        };
        if !bridge.is_bridge() {
            return Err(Error::NotABridge {
                tap: self.t(),
                bridge: bridge.name.clone(),
                what: bridge.describe(),
                origin,
            });
        }
        let bridge_name = IfName::parse(&bridge.name).map_err(|e| Error::Invalid {
            tap: self.t(),
            bridge: bridge.name.clone(),
            reason: e.to_string(),
        })?;
        self.check_owner(&tap, &bridge.name)?;
        self.check_acl(&bridge_name)?;
        if let (Mode::Privileged { .. }, Some(m)) = (self.mode, tap.master) {
            if m != bridge.index {
                let other = match sock.link_by_index(m) {
                    Ok(Some(l)) => l.name,
                    _ => format!("ifindex {m}"),
                };
                return Err(self.denied(
                    &bridge.name,
                    format!("the tap is already attached to {other}; moving taps between bridges is not allowed"),
                ));
            }
        }
        let plan = plan::plan_up(&tap, &bridge, &options).map_err(|e| Error::Invalid {
            tap: self.t(),
            bridge: bridge.name.clone(),
            reason: e.reason(&bridge, &origin),
        })?;
        // Warnings go with a run that changes something (or shows what it would change); a
        // no-op run returns before reading the sysctl.
        if plan.is_empty() && !self.dry_run {
            return Ok(Done::default());
        }
        let warnings: Vec<String> =
            crate::warn::bridge_warnings(&bridge, crate::warn::read_nf_call_iptables())
                .into_iter()
                .map(|w| format!("tap {}, bridge {}: {w}", tap.name, bridge.name))
                .collect();
        if self.dry_run {
            self.print_plan_header(&tap, &bridge, &origin);
            let lines = plan.describe(&bridge);
            if lines.is_empty() {
                println!("  nothing to do: already attached and up");
            }
            for l in lines {
                println!("  {l}");
            }
            return Ok(Done {
                changes: vec![],
                warnings,
            });
        }
        let kernel = |action: &'static str, source: NetlinkError| Error::Kernel {
            tap: self.t(),
            bridge: bridge.name.clone(),
            action,
            source,
        };
        let undo = |sock: &mut Socket| {
            // Best effort: the error that made us undo is the one reported.
            let _ = sock.set_link(tap.index, &plan.undo(&tap));
        };
        if !plan.attach.is_empty() {
            if let Err(e) = sock.set_link(tap.index, &plan.attach) {
                undo(sock);
                return Err(kernel("attaching the tap", e));
            }
        }
        if !plan.port.is_empty() {
            if let Err(e) = sock.set_bridge_port(tap.index, &plan.port) {
                undo(sock);
                return Err(kernel("setting bridge-port options", e));
            }
        }
        if plan.up_last {
            let up = LinkChange {
                up: Some(true),
                ..LinkChange::default()
            };
            if let Err(e) = sock.set_link(tap.index, &up) {
                undo(sock);
                return Err(kernel("bringing the tap up", e));
            }
        }
        Ok(Done {
            changes: vec![format!(
                "tap {} -> bridge {}: {} ({origin})",
                tap.name,
                bridge.name,
                plan.describe(&bridge).join(", ")
            )],
            warnings,
        })
    }

    fn down(&self, sock: &mut Socket) -> Result<Done, Error> {
        let Some(tap) = self.lookup_tap(sock)? else {
            if self.dry_run {
                println!("tap {}: does not exist, nothing to do", self.tap);
            }
            return Ok(Done::default());
        };
        let master = match tap.master {
            Some(m) => sock.link_by_index(m).map_err(|e| self.netlink(e))?,
            None => None,
        };
        let bridge_name = master.as_ref().map_or("(none)", |m| m.name.as_str());
        self.check_owner(&tap, bridge_name)?;
        if let Mode::Privileged { .. } = self.mode {
            match (tap.master, &master) {
                // Fail closed: a master we cannot look up is not one the ACL allows.
                (Some(m), None) => {
                    return Err(self.denied(
                        bridge_name,
                        format!("the tap's master (ifindex {m}) cannot be looked up"),
                    ))
                }
                (_, Some(m)) => {
                    let name =
                        IfName::parse(&m.name).map_err(|e| self.denied(&m.name, e.to_string()))?;
                    if !m.is_bridge() {
                        return Err(self.denied(
                            &m.name,
                            format!("the tap's master {} is not a bridge", m.name),
                        ));
                    }
                    self.check_acl(&name)?;
                }
                (None, None) => {}
            }
        }
        let change = plan::plan_down(&tap);
        if self.dry_run {
            println!(
                "tap {} (ifindex {}), bridge {bridge_name}",
                tap.name, tap.index
            );
            if change.master.is_some() {
                println!("  detach from bridge {bridge_name}");
            }
            if change.up.is_some() {
                println!("  set down");
            }
            if change.is_empty() {
                println!("  nothing to do: not attached and down");
            }
            return Ok(Done::default());
        }
        if change.is_empty() {
            return Ok(Done::default());
        }
        match sock.set_link(tap.index, &change) {
            Ok(()) => Ok(Done {
                changes: vec![format!(
                    "tap {}: detached from {bridge_name}, down",
                    tap.name
                )],
                warnings: vec![],
            }),
            // The tap vanished under us (QEMU closed it): nothing left to undo.
            Err(e) if e.errno() == Some(errno::ENODEV) => Ok(Done::default()),
            Err(e) => Err(Error::Kernel {
                tap: self.t(),
                bridge: bridge_name.to_string(),
                action: "detaching the tap",
                source: e,
            }),
        }
    }

    fn print_plan_header(&self, tap: &Link, bridge: &Link, origin: &str) {
        println!(
            "tap {} (ifindex {}), bridge {} (ifindex {}, {origin})",
            tap.name, tap.index, bridge.name, bridge.index
        );
        if let Mode::Privileged { .. } = self.mode {
            if let Ok(state) = ifup_privilege::proc_state() {
                println!("  privileges: {}", state.summary());
            }
        }
    }
}
