//! Start-up, before anything else happens: decide the mode, parse argv once and validate the tap
//! name once, and in privileged mode read the files that need privilege (config, ACL), then drop
//! to the caller. An error found before the drop is held and returned after it, so nothing is
//! ever reported (or acted on) with more than the caller's rights and `CAP_NET_ADMIN`.

use std::path::{Path, PathBuf};

use ifup_policy::{parse_acl, parse_config, Caller, Config, IfName, PolicyError, Trust};
use ifup_privilege::{Ids, Start};

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
    /// The tap, validated (for `Command::Run`).
    pub tap: Option<IfName>,
    /// qemu-ifup's config (`None`: there is none, or this is qemu-ifdown).
    pub config: Option<Config>,
    /// The config's path, for messages.
    pub config_desc: String,
    /// In privileged mode, what the helper holds once dropped (`ProcState::summary`), for the
    /// dry-run's `privileges:` line.
    pub privileges: Option<String>,
}

/// Start-up for `action`.
pub fn setup(action: Action) -> Result<Setup, Error> {
    let start = ifup_privilege::start().map_err(Error::Privilege)?;
    let privileged = matches!(start, Start::Privileged { .. });
    // Only whether the override is present is noted (to refuse it in privileged mode); there the
    // environment is then cleared before anything else can read it.
    let env_config = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty());
    if privileged {
        ifup_privilege::clear_environment().map_err(Error::Privilege)?;
    }
    let parsed = cli::parse(action, std::env::args_os().skip(1));
    let tap = match &parsed {
        Ok(Command::Run(args)) => Some(IfName::parse_os(&args.tap).map_err(Error::BadTapName)),
        _ => None,
    }
    .transpose();
    let tap_for_messages = tap.as_ref().ok().and_then(Option::as_ref).cloned();

    if let Start::Privileged { net_admin } = start {
        let ids = ifup_privilege::real_ids().map_err(Error::Privilege)?;
        // Without CAP_NET_ADMIN there is nothing to keep: become the caller first, and read the
        // files with the caller's rights only.
        if !net_admin {
            ifup_privilege::become_caller().map_err(Error::Privilege)?;
        }
        let files = match (&parsed, &tap) {
            (Ok(Command::Run(args)), Ok(_)) => {
                read_privileged(action, args.config.is_some(), env_config.is_some(), &ids)
            }
            _ => Ok((None, Ok(ifup_policy::Acl::default()), true)),
        };
        if net_admin {
            ifup_privilege::drop_to_caller(&ids).map_err(Error::Privilege)?;
        }
        let privileges = ifup_privilege::proc_state().ok().map(|s| s.summary());
        let command = parsed?;
        let tap = tap?;
        let (config, acl, reads_config) =
            files.map_err(|e| e.with_tap(tap_for_messages.as_ref()))?;
        return Ok(Setup {
            start,
            mode: Mode::Privileged {
                caller: caller(&ids),
                acl,
                reads_config,
            },
            command,
            tap,
            config,
            config_desc: CONFIG_PATH.to_owned(),
            privileges,
        });
    }

    let command = parsed?;
    let tap = tap?;
    let (path, explicit) = match (&command, env_config) {
        (
            Command::Run(cli::Args {
                config: Some(p), ..
            }),
            _,
        ) => (p.clone(), true),
        (_, Some(p)) => (PathBuf::from(p), true),
        _ => (PathBuf::from(CONFIG_PATH), false),
    };
    let config = match (&command, action) {
        (Command::Run(_), Action::Up) => load_config(&path, explicit, Trust::Any, None)
            .map_err(|e| e.with_tap(tap_for_messages.as_ref()))?,
        _ => None,
    };
    Ok(Setup {
        start,
        mode: Mode::Trusted,
        command,
        tap,
        config,
        config_desc: path.display().to_string(),
        privileges: None,
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
