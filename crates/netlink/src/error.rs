use std::fmt;
use std::io;

use nix::errno::Errno;

/// The rtnetlink operation that failed, named for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Open,
    GetLink,
    SetLink,
    SetBridgePort,
    GetVlans,
    GetRoute,
    SetRoute,
    NewLink,
    NewAddress,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Open => "opening a netlink socket",
            Op::GetLink => "looking up a link",
            Op::SetLink => "changing a link",
            Op::SetBridgePort => "setting bridge-port options",
            Op::GetVlans => "reading the port's VLANs",
            Op::GetRoute => "reading the routing table",
            Op::SetRoute => "changing a route",
            Op::NewLink => "creating a link",
            Op::NewAddress => "adding an address",
        })
    }
}

/// Everything that can go wrong talking rtnetlink.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// A socket call failed (not a kernel reply).
    #[error("{op}: {source}")]
    Io {
        op: Op,
        #[source]
        source: io::Error,
    },
    /// The kernel answered the request with an error.
    #[error("{op}: {}{}", errno.desc(), ext_ack.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kernel {
        op: Op,
        errno: Errno,
        /// The kernel's extended-ack message, if it sent one.
        ext_ack: Option<String>,
    },
    /// The kernel's reply could not be understood.
    #[error("{op}: unexpected netlink reply: {detail}")]
    Malformed { op: Op, detail: String },
}

impl NetlinkError {
    /// The errno of a kernel or socket error, if any.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            NetlinkError::Io { source, .. } => source.raw_os_error().map(Errno::from_raw),
            NetlinkError::Malformed { .. } => None,
        }
    }

    /// True when the error means "not permitted": the caller lacks CAP_NET_ADMIN.
    pub fn is_permission(&self) -> bool {
        matches!(self.errno(), Some(Errno::EPERM | Errno::EACCES))
    }

    pub(crate) fn malformed(op: Op, detail: impl Into<String>) -> Self {
        NetlinkError::Malformed {
            op,
            detail: detail.into(),
        }
    }
}
