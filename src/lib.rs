//! qemu-ifup-rs: the core shared by the `qemu-ifup` and `qemu-ifdown` binaries.
//!
//! [`main`] (in `run.rs`) reads as the program does: start-up (`startup.rs`: mode, argv, files,
//! privilege drop), the lookups, decisions, plan and changes (`flow.rs`, over the [`net::Net`]
//! trait; decisions in `decide.rs` and the plan in `plan.rs` are pure), then the report. The
//! decision rules and the layout are described in `docs/DESIGN.md`.

pub mod cli;
mod decide;
mod error;
mod files;
mod flow;
mod log;
mod net;
mod plan;
mod run;
mod startup;
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
