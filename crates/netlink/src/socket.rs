//! The transport: one blocking NETLINK_ROUTE socket (neli's `NlSocket`), connected to the kernel.

use std::os::fd::AsRawFd;

use neli::consts::socket::{Msg, NlFamily};
use neli::socket::NlSocket;
use neli::utils::Groups;

use crate::consts::nl;
use crate::error::{NetlinkError, Op};
use crate::wire::{self, Reply};

/// `NLM_F_REQUEST` and `NLM_F_ACK`, set on every request; `NLM_F_DUMP` for dumps.
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_CREATE` and `NLM_F_EXCL`, for requests that create an object.
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_EXCL: u16 = 0x200;

/// Large enough for any single reply we ask for (one link without statistics, or one dump
/// datagram, which the kernel sizes to at most 32 KiB).
const RECV_BUF: usize = 64 * 1024;

/// A blocking rtnetlink socket. Requests are strictly one at a time.
pub struct Socket {
    sock: NlSocket,
    port: u32,
    seq: u32,
    buf: Vec<u8>,
}

impl Socket {
    /// Open the socket: bind to a kernel-chosen port, connect to the kernel (port 0) so that no
    /// other process can inject replies, and ask for extended acks and strict request checking.
    pub fn open() -> Result<Socket, NetlinkError> {
        let io = |source| NetlinkError::Io {
            op: Op::Open,
            source,
        };
        let sock = NlSocket::connect(NlFamily::Route, None, Groups::empty()).map_err(io)?;
        nix::sys::socket::connect(sock.as_raw_fd(), &nix::sys::socket::NetlinkAddr::new(0, 0))
            .map_err(|e| io(e.into()))?;
        // Both are best effort: old kernels lack them, and we work without them.
        let _ = sock.enable_ext_ack(true);
        let _ = sock.enable_strict_checking(true);
        let port = sock.pid().map_err(io)?;
        Ok(Socket {
            sock,
            port,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// The port id the kernel gave this socket (replies are addressed to it).
    pub fn port_id(&self) -> u32 {
        self.port
    }

    /// Send one request of type `ty` with `body` (the fixed header and attributes), with
    /// `NLM_F_REQUEST | NLM_F_ACK | flags`, and collect the payloads of the replies until the
    /// acknowledgement (or, for a dump, until `NLMSG_DONE`). Messages with another sequence number
    /// or port id are not answers to this request and are skipped. A kernel error becomes
    /// [`NetlinkError::Kernel`].
    pub(crate) fn request(
        &mut self,
        op: Op,
        ty: u16,
        flags: u16,
        body: &[u8],
    ) -> Result<Vec<Vec<u8>>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let len = u32::try_from(nl::HDRLEN + body.len())
            .map_err(|_| NetlinkError::malformed(op, "request too large"))?;
        let mut out = Vec::with_capacity(nl::HDRLEN + body.len());
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&self.port.to_ne_bytes());
        out.extend_from_slice(body);
        self.sock
            .send(&out, Msg::empty())
            .map_err(|source| NetlinkError::Io { op, source })?;

        let mut replies = Vec::new();
        loop {
            let (len, _) = self
                .sock
                .recv(&mut self.buf[..], Msg::TRUNC)
                .map_err(|source| NetlinkError::Io { op, source })?;
            let datagram = self
                .buf
                .get(..len)
                .ok_or_else(|| NetlinkError::malformed(op, "reply larger than the buffer"))?;
            for msg in wire::messages(datagram) {
                let msg = msg.map_err(|e| NetlinkError::malformed(op, e))?;
                if msg.seq != seq || msg.port != self.port {
                    continue;
                }
                match wire::classify(&msg).map_err(|e| NetlinkError::malformed(op, e))? {
                    Reply::Data(payload) => {
                        replies.push(payload.to_vec());
                        // A dump's last part is the DONE; a single reply is followed by the ack.
                    }
                    Reply::Ack => return Ok(replies),
                    Reply::Error { errno, ext_ack } => {
                        return Err(NetlinkError::Kernel { op, errno, ext_ack })
                    }
                    Reply::Done(Some(errno)) => {
                        return Err(NetlinkError::Kernel {
                            op,
                            errno,
                            ext_ack: None,
                        })
                    }
                    Reply::Done(None) if dump => return Ok(replies),
                    Reply::Done(None) => {}
                }
            }
        }
    }
}

/// `struct ifinfomsg`: family, type 0, index, flags and the mask of flags to change.
pub(crate) fn ifinfomsg(family: u8, index: u32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.push(family);
    b.push(0);
    b.extend_from_slice(&0u16.to_ne_bytes());
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

/// The size of `struct ifinfomsg`.
pub(crate) const IFINFOMSG_LEN: usize = 16;
