use nix::errno::Errno;

/// Everything that can go wrong while inspecting or dropping privilege. Each message is one line
/// meant for the sysadmin reading `qemu-ifup: error: …`; the errno is shown by its description.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivilegeError {
    /// The process was started with privilege, but `CAP_NET_ADMIN` is not in its permitted set.
    #[error(
        "the helper was started with privilege but without CAP_NET_ADMIN: install it setuid root \
         or with `setcap cap_net_admin+ep`"
    )]
    NoNetAdmin,

    /// `drop_to_caller` was called with ids that are not the process's real ids.
    #[error(
        "refusing to drop privilege to uid {uid} gid {gid}: the caller is uid {real_uid} gid \
         {real_gid}"
    )]
    NotTheCaller {
        uid: u32,
        gid: u32,
        real_uid: u32,
        real_gid: u32,
    },

    /// Threads were started before the drop: capabilities are per-thread, so the others would
    /// keep theirs.
    #[error(
        "cannot drop privilege safely: the process already runs {threads} threads, and the drop \
         must happen before any thread is started"
    )]
    NotSingleThreaded { threads: u32 },

    #[error("cannot read the process's user and group ids: {}", .source.desc())]
    GetIds {
        #[source]
        source: Errno,
    },

    #[error("cannot read the caller's supplementary groups: {}", .source.desc())]
    GetGroups {
        #[source]
        source: Errno,
    },

    #[error("cannot read the process's capabilities: {}", .source.desc())]
    GetCaps {
        #[source]
        source: Errno,
    },

    #[error("cannot keep CAP_NET_ADMIN across the uid switch (PR_SET_KEEPCAPS): {}", .source.desc())]
    KeepCaps {
        #[source]
        source: Errno,
    },

    #[error("cannot find the kernel's last capability number: {}", .source.desc())]
    LastCap {
        #[source]
        source: Errno,
    },

    #[error("cannot drop capability {cap} from the bounding set: {}", .source.desc())]
    DropBounding {
        cap: u32,
        #[source]
        source: Errno,
    },

    #[error("cannot switch to the caller's gid {gid}: {}", .source.desc())]
    SetGid {
        gid: u32,
        #[source]
        source: Errno,
    },

    #[error("cannot switch to the caller's uid {uid}: {}", .source.desc())]
    SetUid {
        uid: u32,
        #[source]
        source: Errno,
    },

    #[error("cannot limit the capabilities to CAP_NET_ADMIN: {}", .source.desc())]
    SetCaps {
        #[source]
        source: Errno,
    },

    #[error("cannot clear the ambient capabilities: {}", .source.desc())]
    ClearAmbient {
        #[source]
        source: Errno,
    },

    #[error("cannot clear the environment: {}", .source.desc())]
    ClearEnv {
        #[source]
        source: Errno,
    },

    #[error("cannot set no-new-privileges: {}", .source.desc())]
    NoNewPrivs {
        #[source]
        source: Errno,
    },

    /// Read-back after the drop disagreed with what was asked for; the process must not go on.
    #[error("the privilege drop did not take effect: {detail}")]
    DropIncomplete { detail: String },

    #[error("cannot read /proc/self/status: {source}")]
    ReadStatus {
        #[source]
        source: std::io::Error,
    },

    #[error("cannot parse /proc/self/status: the {field} line is missing or malformed")]
    ParseStatus { field: &'static str },
}
