//! Policy for qemu-ifup-rs: the config file (`/etc/qemu-ifup-rs.conf`), the user ACL
//! (`/etc/qemu/bridge.conf`), whose tap is whose, interface-name validation and shell-style
//! globs.
//!
//! Everything here is pure: files are read through [`FileSource`], so the whole crate is
//! unit-tested without root and without touching the filesystem. The rules are those of the
//! man pages `qemu-ifup-rs(8)` and `qemu-ifup-rs.conf(5)`, and of `docs/DESIGN.md`.

mod acl;
mod addr;
mod config;
mod error;
mod glob;
mod name;
mod options;
mod owner;
mod source;

pub use acl::{parse_acl, Acl, AclRule, AclTarget, AclVerb, AclVerdict};
pub use addr::Prefix;
pub use config::{
    parse_config, BridgeDef, BridgeLine, Choice, Config, Location, Origin, TapRule, Way,
};
pub use error::{LineError, PolicyError, TrustProblem};
pub use glob::{glob_match, validate_glob, GlobError};
pub use name::{IfName, NameError, MAX_NAME_LEN};
pub use options::{Mtu, PortOptions, TapMac, VlanRange, MAX_MTU, MAX_VLAN, MIN_MTU, MIN_VLAN};
pub use owner::{tap_is_callers, NotCallers, TapOwner};
pub use source::{
    check_trusted, Caller, FileData, FileMeta, FileSource, MemSource, Trust, S_IFDIR, S_IFLNK,
    S_IFMT, S_IFREG,
};

/// How deep `include` may nest: the main file is depth 0, a file it includes depth 1, and so on.
/// An include at a depth greater than this is an error.
pub const MAX_INCLUDE_DEPTH: usize = 8;
