//! Route lookup: the device of the default route in the main table.

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{RtAddrFamily, RtScope, RtTable, Rta, Rtm, RtmF, Rtn, Rtprot};
use neli::rtnl::{Rtattr, RtattrBuilder, Rtmsg, RtmsgBuilder};
use neli::types::{Buffer, RtBuffer};

use crate::consts::NLA_TYPE_MASK;
use crate::error::{libc_errno as errno, NetlinkError, Op};
use crate::socket::Socket;

const RT_TABLE_MAIN: u32 = 254;

impl Socket {
    /// The ifindex of the device carrying the default route: IPv4 main table first, then IPv6.
    /// `Ok(None)` when neither family has a unicast default route with an output device.
    pub fn default_route_device(&mut self) -> Result<Option<u32>, NetlinkError> {
        for family in [RtAddrFamily::Inet, RtAddrFamily::Inet6] {
            if let Some(dev) = self.default_route_in(family)? {
                return Ok(Some(dev));
            }
        }
        Ok(None)
    }

    fn default_route_in(&mut self, family: RtAddrFamily) -> Result<Option<u32>, NetlinkError> {
        let op = Op::GetRoute;
        // With strict checking the kernel filters the dump to the main table itself.
        let mut attrs = RtBuffer::new();
        let table: Rtattr<Rta, Buffer> = RtattrBuilder::default()
            .rta_type(Rta::Table)
            .rta_payload(RT_TABLE_MAIN)
            .build()
            .map_err(|e| NetlinkError::encode(op, e))?;
        attrs.push(table);
        let msg = RtmsgBuilder::default()
            .rtm_family(family)
            .rtm_dst_len(0)
            .rtm_src_len(0)
            .rtm_tos(0)
            .rtm_table(RtTable::Main)
            .rtm_protocol(Rtprot::Unspec)
            .rtm_scope(RtScope::Universe)
            .rtm_type(Rtn::Unspec)
            .rtm_flags(RtmF::empty())
            .rtattrs(attrs)
            .build()
            .map_err(|e| NetlinkError::encode(op, e))?;
        let replies = match self.exchange::<_, Rtmsg>(op, Rtm::Getroute, NlmF::DUMP, msg) {
            Ok(r) => r,
            // Strict dumps of a table that does not exist (no route at all) end in ENOENT.
            Err(e) if e.errno() == Some(errno::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        for route in replies {
            if *route.rtm_dst_len() != 0 || *route.rtm_type() != Rtn::Unicast {
                continue;
            }
            let mut table = u32::from(u8::from(*route.rtm_table()));
            let mut oif = None;
            for a in route.rtattrs().iter() {
                let ty = u16::from(*a.rta_type()) & NLA_TYPE_MASK;
                let p = a.rta_payload().as_ref();
                let val = p
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_ne_bytes);
                match Rta::from(ty) {
                    Rta::Table => table = val.unwrap_or(table),
                    Rta::Oif => oif = val,
                    _ => {}
                }
            }
            if table == RT_TABLE_MAIN {
                if let Some(oif) = oif {
                    return Ok(Some(oif));
                }
            }
        }
        Ok(None)
    }
}
