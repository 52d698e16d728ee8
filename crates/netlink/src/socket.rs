//! The transport: one blocking NETLINK_ROUTE socket, connected to the kernel.

use std::fmt::Debug;
use std::io::Cursor;
use std::os::fd::AsRawFd;

use neli::consts::nl::NlmF;
use neli::consts::rtnl::Rtm;
use neli::consts::socket::{Msg, NlFamily};
use neli::nl::{NlPayload, NlmsghdrBuilder};
use neli::socket::NlSocket;
use neli::utils::Groups;
use neli::{FromBytesWithInput, Size, ToBytes};

use crate::error::{NetlinkError, Op};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Large enough for any single reply we ask for (one link without statistics, or one dump
/// datagram, which the kernel sizes to at most 32 KiB).
const RECV_BUF: usize = 64 * 1024;

/// A blocking rtnetlink socket. Requests are strictly one at a time.
pub struct Socket {
    sock: NlSocket,
    pid: u32,
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
        let pid = sock.pid().map_err(io)?;
        Ok(Socket {
            sock,
            pid,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// The port id the kernel gave this socket (replies are addressed to it).
    pub fn port_id(&self) -> u32 {
        self.pid
    }

    /// Send one request with NLM_F_ACK and collect the reply payloads until the acknowledgement
    /// (or, for a dump, until NLMSG_DONE). A kernel error becomes [`NetlinkError::Kernel`].
    pub(crate) fn exchange<Q, P>(
        &mut self,
        op: Op,
        ty: Rtm,
        flags: NlmF,
        request: Q,
    ) -> Result<Vec<P>, NetlinkError>
    where
        Q: Size + ToBytes + Debug,
        P: Size + FromBytesWithInput<Input = usize> + Debug,
    {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let dump = flags.contains(NlmF::DUMP);
        let msg = NlmsghdrBuilder::default()
            .nl_type(ty)
            .nl_flags(flags | NlmF::REQUEST | NlmF::ACK)
            .nl_seq(seq)
            .nl_pid(self.pid)
            .nl_payload(NlPayload::<Rtm, Q>::Payload(request))
            .build()
            .map_err(|e| NetlinkError::encode(op, e))?;
        let mut out = Cursor::new(vec![0u8; msg.padded_size()]);
        msg.to_bytes(&mut out)
            .map_err(|e| NetlinkError::encode(op, e))?;
        self.sock
            .send(out.get_ref(), Msg::empty())
            .map_err(|source| NetlinkError::Io { op, source })?;

        let mut replies = Vec::new();
        loop {
            let (len, _) = self
                .sock
                .recv(&mut self.buf[..], Msg::TRUNC)
                .map_err(|source| NetlinkError::Io { op, source })?;
            if len > self.buf.len() {
                return Err(NetlinkError::malformed(op, "reply larger than the buffer"));
            }
            let mut off = 0;
            while off + NLMSG_HDRLEN <= len {
                let data = &self.buf[off..len];
                let msg_len = u32_at(data, 0) as usize;
                if msg_len < NLMSG_HDRLEN || msg_len > data.len() {
                    return Err(NetlinkError::malformed(op, "bad message length"));
                }
                let msg = &data[..msg_len];
                off += align4(msg_len);
                let msg_type = u16_at(msg, 4);
                let msg_flags = u16_at(msg, 6);
                let (msg_seq, msg_pid) = (u32_at(msg, 8), u32_at(msg, 12));
                if msg_seq != seq || msg_pid != self.pid {
                    // Not the answer to this request: ignore it.
                    continue;
                }
                let body = &msg[NLMSG_HDRLEN..];
                match msg_type {
                    NLMSG_ERROR => {
                        let errno = parse_error(op, body, msg_flags)?;
                        return match errno {
                            None => Ok(replies),
                            Some((errno, ext_ack)) => {
                                Err(NetlinkError::Kernel { op, errno, ext_ack })
                            }
                        };
                    }
                    NLMSG_DONE => {
                        // A dump ends here; a DONE may carry an error code (i32) first.
                        if body.len() >= 4 {
                            let code = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
                            if code < 0 {
                                return Err(NetlinkError::Kernel {
                                    op,
                                    errno: -code,
                                    ext_ack: None,
                                });
                            }
                        }
                        if dump {
                            return Ok(replies);
                        }
                    }
                    _ => {
                        let payload = P::from_bytes_with_input(&mut Cursor::new(body), body.len())
                            .map_err(|e| NetlinkError::malformed(op, e.to_string()))?;
                        replies.push(payload);
                        if dump && msg_flags & NLM_F_MULTI == 0 {
                            return Ok(replies);
                        }
                    }
                }
            }
        }
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decode the body of an NLMSG_ERROR: `Ok(None)` for an ack, `Ok(Some((errno, ext_ack)))` for an
/// error. The extended-ack TLVs follow the echoed request (only its header when CAPPED).
fn parse_error(
    op: Op,
    body: &[u8],
    flags: u16,
) -> Result<Option<(i32, Option<String>)>, NetlinkError> {
    if body.len() < 4 + NLMSG_HDRLEN {
        return Err(NetlinkError::malformed(op, "short error message"));
    }
    let code = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
    if code == 0 {
        return Ok(None);
    }
    let mut ext_ack = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        let echoed = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            align4(u32_at(body, 4) as usize)
        };
        let mut tlvs = body.get(4 + echoed..).unwrap_or(&[]);
        while tlvs.len() >= 4 {
            let len = u16_at(tlvs, 0) as usize;
            let ty = u16_at(tlvs, 2) & crate::consts::NLA_TYPE_MASK;
            if len < 4 || len > tlvs.len() {
                break;
            }
            if ty == NLMSGERR_ATTR_MSG {
                ext_ack = Some(c_string(&tlvs[4..len]));
            }
            tlvs = tlvs.get(align4(len)..).unwrap_or(&[]);
        }
    }
    Ok(Some((code.saturating_neg(), ext_ack)))
}

/// A NUL-terminated (or not) byte string from the kernel, made printable.
pub(crate) fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}
