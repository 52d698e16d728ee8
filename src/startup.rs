//! Start-up, before anything else happens: decide the mode, parse argv once and validate the tap
//! name once, and in privileged mode read the files that need privilege (config, ACL), then drop
//! to the caller. An error found before the drop is held and returned after it, so nothing is
//! ever reported (or acted on) with more than the caller's rights and `CAP_NET_ADMIN`.

use std::path::{Path, PathBuf};

use ifup_policy::{parse_acl, parse_config, Caller, Config, IfName, PolicyError, Trust};
use ifup_privilege::{Ids, Start};
use ifup_tun::Channel;

use crate::cli::{self, Action, Command};
use crate::decide::Mode;
use crate::error::Error;
use crate::files::{self, SystemFiles};
use crate::{ACL_PATH, CONFIG_ENV, CONFIG_PATH};

/// Everything the run needs, read and checked.
pub struct Setup {
    pub start: Start,
    pub mode: Mode,
    pub command: Command,
    /// What the run acts on, validated.
    pub target: Target,
    /// qemu-ifup's config (`None`: there is none, or this is qemu-ifdown).
    pub config: Option<Config>,
    /// The config's path, for messages.
    pub config_desc: String,
    /// In privileged mode, for a dry run: what the helper holds once dropped
    /// (`ProcState::summary`), for its `privileges:` line.
    pub privileges: Option<String>,
    /// Whether the caller started us with no-new-privileges (read before the helper sets it on
    /// itself), for the reason behind a "not permitted".
    pub no_new_privs: bool,
}

/// What a run acts on.
pub enum Target {
    /// `--help`, `--version`: nothing.
    Nothing,
    /// The tap QEMU named.
    Tap(IfName),
    /// Bridge-helper mode: the bridge, and the socket to pass the new tap over.
    Helper {
        bridge: IfName,
        channel: Channel,
        vnet_hdr: bool,
    },
}

impl Target {
    /// The tap or bridge, for messages about the config.
    fn name(&self) -> Option<&IfName> {
        match self {
            Target::Tap(t) => Some(t),
            Target::Helper { bridge, .. } => Some(bridge),
            Target::Nothing => None,
        }
    }
}

/// Validate what `command` names. The bridge helper's socket is checked first, before anything
/// else is opened, so that no descriptor of ours can take its number.
fn target(command: &Command) -> Result<Target, Error> {
    match command {
        Command::Run(args) => IfName::parse_os(&args.tap)
            .map(Target::Tap)
            .map_err(Error::BadTapName),
        Command::Helper(h) => {
            let channel = Channel::from_arg(h.fd).map_err(|e| Error::Usage(e.to_string()))?;
            let bridge =
                IfName::parse_os(&h.bridge).map_err(|e| Error::Usage(format!("--br: {e}")))?;
            Ok(Target::Helper {
                bridge,
                channel,
                vnet_hdr: h.vnet_hdr,
            })
        }
        Command::Help | Command::Version => Ok(Target::Nothing),
    }
}

/// Start-up for `action`, started as `start`.
pub fn setup(action: Action, start: Start) -> Result<Setup, Error> {
    let no_new_privs = ifup_privilege::no_new_privs();
    let privileged = matches!(start, Start::Privileged { .. });
    // Only whether the override is present is noted (to refuse it in privileged mode); there the
    // environment is then cleared before anything else can read it.
    let env_config = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty());
    if privileged {
        ifup_privilege::clear_environment().map_err(Error::Privilege)?;
    }
    // argv, parsed once and checked once; a problem is held until after the drop.
    let checked = cli::parse(action, std::env::args_os().skip(1)).and_then(|command| {
        let target = target(&command)?;
        Ok((command, target))
    });
    let name = checked.as_ref().ok().and_then(|(_, t)| t.name().cloned());
    let config_arg = match &checked {
        Ok((Command::Run(args), _)) => args.config.clone(),
        _ => None,
    };
    let needs_files = matches!(&checked, Ok((_, t)) if !matches!(t, Target::Nothing));
    let dry_run = matches!(&checked, Ok((Command::Run(args), _)) if args.dry_run);

    if let Start::Privileged { net_admin } = start {
        let ids = ifup_privilege::real_ids().map_err(Error::Privilege)?;
        // Without CAP_NET_ADMIN there is nothing to keep: become the caller first, and read the
        // files with the caller's rights only.
        if !net_admin {
            ifup_privilege::become_caller().map_err(Error::Privilege)?;
        }
        let files = if needs_files {
            read_privileged(action, config_arg.is_some(), env_config.is_some(), &ids)
        } else {
            Ok((None, Ok(ifup_policy::Acl::default()), true))
        };
        if net_admin {
            ifup_privilege::drop_to_caller(&ids).map_err(Error::Privilege)?;
        }
        let privileges = dry_run
            .then(|| ifup_privilege::proc_state().ok().map(|s| s.summary()))
            .flatten();
        let (command, target) = checked?;
        let (config, acl, reads_config) = files.map_err(|e| e.with_tap(name.as_ref()))?;
        return Ok(Setup {
            start,
            mode: Mode::Privileged {
                caller: caller(&ids),
                acl,
                reads_config,
            },
            command,
            target,
            config,
            config_desc: CONFIG_PATH.to_owned(),
            privileges,
            no_new_privs,
        });
    }

    let (command, target) = checked?;
    let (path, explicit) = match (config_arg, env_config) {
        (Some(p), _) => (p, true),
        (None, Some(p)) => (PathBuf::from(p), true),
        (None, None) => (PathBuf::from(CONFIG_PATH), false),
    };
    let config = match action {
        Action::Up if needs_files => {
            load_config(&path, explicit, Trust::Any, None).map_err(|e| e.with_tap(name.as_ref()))?
        }
        _ => None,
    };
    Ok(Setup {
        start,
        mode: Mode::Trusted,
        command,
        target,
        config,
        config_desc: path.display().to_string(),
        privileges: None,
        no_new_privs,
    })
}

fn caller(ids: &Ids) -> Caller {
    Caller {
        uid: ids.uid,
        gid: ids.gid,
        groups: ids.groups.clone(),
    }
}

/// In privileged mode, still holding privilege: refuse config overrides, then read the config
/// (qemu-ifup only) and the ACL with the ownership checks. An unusable ACL is kept as the reason
/// every bridge is denied. Also says whether the caller could read the config.
#[allow(clippy::type_complexity)]
fn read_privileged(
    action: Action,
    config_arg: bool,
    env_config: bool,
    ids: &Ids,
) -> Result<(Option<Config>, Result<ifup_policy::Acl, String>, bool), Error> {
    for (given, what) in [(config_arg, "--config"), (env_config, CONFIG_ENV)] {
        if given {
            return Err(Error::ConfigOverride { what, uid: ids.uid });
        }
    }
    let caller = caller(ids);
    let config = match action {
        Action::Up => load_config(
            Path::new(CONFIG_PATH),
            false,
            Trust::RootOwnedOnly,
            Some(&caller),
        )?,
        Action::Down => None,
    };
    let acl = parse_acl(Path::new(ACL_PATH), &SystemFiles::NoFollow, &caller)
        .map_err(|e| redacted(&e, &caller));
    let reads_config = files::caller_can_read(&caller, Path::new(CONFIG_PATH));
    Ok((config, acl, reads_config))
}

/// `e` as `caller` may see it: the text of a line of a file they cannot read is not quoted
/// (the location is enough for the admin, who can read the file).
fn redacted(e: &PolicyError, caller: &Caller) -> String {
    match e.location() {
        Some(at) if !files::caller_can_read(caller, &at.file) => format!("{at}: invalid line"),
        _ => e.to_string(),
    }
}

/// Read the config at `path`. `caller`: privileged mode (errors redacted for them).
fn load_config(
    path: &Path,
    explicit: bool,
    trust: Trust,
    caller: Option<&Caller>,
) -> Result<Option<Config>, Error> {
    let files = match trust {
        Trust::Any => SystemFiles::Follow,
        Trust::RootOwnedOnly => SystemFiles::NoFollow,
    };
    match parse_config(path, &files, trust) {
        Ok(Some(c)) => Ok(Some(c)),
        Ok(None) if explicit => Err(Error::Usage(format!(
            "config file {} does not exist",
            path.display()
        ))),
        Ok(None) => Ok(None),
        Err(source) => Err(Error::Config {
            tap: None,
            text: match caller {
                Some(c) => redacted(&source, c),
                None => source.to_string(),
            },
            source: Box::new(source),
        }),
    }
}
