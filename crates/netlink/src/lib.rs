//! Blocking rtnetlink mechanism for qemu-ifup-rs: one socket, one function per operation.
//!
//! No policy and no logging live here. Every request asks for an acknowledgement, every reply is
//! matched to its request by sequence number and port id, and the socket is connected to the
//! kernel (port 0), so the kernel itself refuses datagrams from any other sender. No multicast
//! group is joined. Requests are encoded, and replies decoded, by the pure functions of [`wire`].

pub mod consts;
mod error;
mod link;
mod route;
mod socket;
pub mod wire;

pub use error::{NetlinkError, Op};
pub use link::{
    parse_link, BridgeInfo, BridgePort, Link, LinkChange, PortFlags, TunInfo, VlanEntry,
};
pub use nix::errno::Errno;
pub use route::{Route, RouteSpec};
pub use socket::Socket;
