use std::fmt;
use std::io;

/// The rtnetlink operation that failed, named for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Open,
    GetLink,
    SetLink,
    SetBridgePort,
    GetRoute,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Open => "opening a netlink socket",
            Op::GetLink => "looking up a link",
            Op::SetLink => "changing a link",
            Op::SetBridgePort => "setting bridge-port options",
            Op::GetRoute => "reading the routing table",
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
    #[error("{op}: {}{}", nix::errno::Errno::from_raw(*errno).desc(), ext_ack.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kernel {
        op: Op,
        /// Positive errno value.
        errno: i32,
        /// The kernel's extended-ack message, if it sent one.
        ext_ack: Option<String>,
    },
    /// A request could not be encoded (a bug, never input-dependent in practice).
    #[error("{op}: cannot encode the request: {detail}")]
    Encode { op: Op, detail: String },
    /// The kernel's reply could not be understood.
    #[error("{op}: unexpected netlink reply: {detail}")]
    Malformed { op: Op, detail: String },
}

impl NetlinkError {
    /// The errno of a kernel or socket error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            NetlinkError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// True when the error means "not permitted": the caller lacks CAP_NET_ADMIN.
    pub fn is_permission(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc_errno::EPERM) | Some(libc_errno::EACCES)
        )
    }

    pub(crate) fn malformed(op: Op, detail: impl Into<String>) -> Self {
        NetlinkError::Malformed {
            op,
            detail: detail.into(),
        }
    }

    pub(crate) fn encode(op: Op, err: impl fmt::Display) -> Self {
        NetlinkError::Encode {
            op,
            detail: err.to_string(),
        }
    }
}

/// The few errno values callers test for.
pub mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EACCES: i32 = 13;
    pub const EBUSY: i32 = 16;
    pub const ENODEV: i32 = 19;
    pub const EOPNOTSUPP: i32 = 95;
}
