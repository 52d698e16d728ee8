//! qemu-ifup-rs: the core shared by the `qemu-ifup` and `qemu-ifdown` binaries.
//!
//! `main` (in [`run`]) decides the mode (root, privileged, plain user), reads the config and ACL,
//! drops privilege, then plans and applies the change through the netlink crate. The plan is
//! computed from kernel state and policy before anything is changed.

pub mod cli;
mod error;
mod files;
mod log;
mod plan;
mod run;
pub mod warn;

pub use cli::Action;
pub use error::{Error, EPERM_HINT};
pub use run::main;

/// The config file; a distro may move it at build time with `QEMU_IFUP_RS_CONFIG=/path`.
pub const CONFIG_PATH: &str = match option_env!("QEMU_IFUP_RS_CONFIG") {
    Some(p) => p,
    None => "/etc/qemu-ifup-rs.conf",
};

/// The user ACL, shared with QEMU's qemu-bridge-helper.
pub const ACL_PATH: &str = "/etc/qemu/bridge.conf";

/// The environment variable that points one VM at another config (not in privileged mode).
pub const CONFIG_ENV: &str = "QEMU_IFUP_CONFIG";
