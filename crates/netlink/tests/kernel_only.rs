//! The socket accepts datagrams from the kernel only: it is connected to port 0, so the kernel
//! refuses a unicast from any other netlink socket (ECONNREFUSED) instead of queueing a forged
//! reply. Needs no privilege: any process may send netlink unicasts to a port id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::fd::AsRawFd;

use ifup_netlink::Socket;
use nix::errno::Errno;
use nix::sys::socket::{
    bind, getsockname, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

fn netlink_socket() -> std::os::fd::OwnedFd {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .unwrap();
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).unwrap();
    fd
}

/// A well-formed NLMSG_DONE header, as a forged "end of reply" would be.
fn forged_reply(seq: u32, port: u32) -> Vec<u8> {
    let mut msg = Vec::new();
    msg.extend_from_slice(&20u32.to_ne_bytes()); // nlmsg_len
    msg.extend_from_slice(&3u16.to_ne_bytes()); // NLMSG_DONE
    msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&port.to_ne_bytes());
    msg.extend_from_slice(&0i32.to_ne_bytes());
    msg
}

#[test]
fn forged_replies_from_other_sockets_are_refused_by_the_kernel() {
    let ours = Socket::open().unwrap();
    let attacker = netlink_socket();
    let err = sendto(
        attacker.as_raw_fd(),
        &forged_reply(1, ours.port_id()),
        &NetlinkAddr::new(ours.port_id(), 0),
        MsgFlags::empty(),
    );
    assert_eq!(err, Err(Errno::ECONNREFUSED));
}

#[test]
fn control_an_unconnected_socket_would_have_taken_it() {
    // The same send to a plain bound socket succeeds: the refusal above is the connect().
    let victim = netlink_socket();
    let port = getsockname::<NetlinkAddr>(victim.as_raw_fd())
        .unwrap()
        .pid();
    let attacker = netlink_socket();
    let sent = sendto(
        attacker.as_raw_fd(),
        &forged_reply(1, port),
        &NetlinkAddr::new(port, 0),
        MsgFlags::empty(),
    )
    .unwrap();
    assert_eq!(sent, 20);
}
