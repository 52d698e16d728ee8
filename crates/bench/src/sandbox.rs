//! The place the benchmark runs in: its own network namespace (so `br0`, the taps and thousands of
//! filler links never touch the host) and its own mount namespace (a sysfs of that network
//! namespace, which Debian's `/etc/qemu-ifup` reads, a scratch tmpfs, and a private `/dev/log`
//! listener so that the helpers' syslog messages cost what they cost on a real host without
//! flooding the host's journal).

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::Res;

/// The benchmark's bridge, the tap it attaches, and the address/default route that make the bridge
/// the default-route device. 192.0.2.0/24 is TEST-NET-1: nothing is ever sent there (the bridge has
/// no carrier), and it cannot clash with a real network.
pub const BRIDGE: &str = "br0";
pub const TAP: &str = "tap0";
const BRIDGE_ADDR: &str = "192.0.2.1/24";
const GATEWAY: &str = "192.0.2.254";
pub const BRIDGE_MAC: &str = "02:00:00:00:02:01";
/// Exists while `br_netfilter` is loaded; per network namespace.
const NF_CALL_IPTABLES: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";
/// The destinations of the routed-tap measurement: TEST-NET-2 and the IPv6 documentation prefix,
/// apart from `br0`'s network.
pub const ROUTE_V4: &str = "198.51.100.10";
pub const ROUTE_V6: &str = "2001:db8::10";
/// Forwarding, per network namespace: on, as a host with routed taps has it (qemu-ifup warns on
/// every call for a routed tap otherwise).
const FORWARDING: [&str; 2] = [
    "/proc/sys/net/ipv4/ip_forward",
    "/proc/sys/net/ipv6/conf/all/forwarding",
];

/// PATH for every program the benchmark runs (they all get a clean environment).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct Sandbox {
    /// A tmpfs private to the benchmark's mount namespace.
    pub scratch: PathBuf,
    /// Messages received on the private `/dev/log`, if the listener could be set up.
    pub syslog: Option<Arc<AtomicUsize>>,
    /// One line for the report: how syslog was handled.
    pub syslog_note: String,
    /// Filler links created so far.
    pub fillers: usize,
    /// One line for the report if the host loads `br_netfilter`.
    pub netfilter_note: Option<String>,
}

impl Sandbox {
    /// Unshare the network and mount namespaces of this (still single-threaded) process, mount
    /// sysfs and a scratch tmpfs, start the `/dev/log` listener, and build `br0` + `tap0`.
    pub fn enter() -> Res<Sandbox> {
        unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).map_err(|e| {
            format!(
                "unshare(CLONE_NEWNET | CLONE_NEWNS) failed: {e} (the benchmark must run as root)"
            )
        })?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| format!("making the mount namespace private: {e}"))?;
        // As `ip netns exec` does: a sysfs that shows this network namespace's links.
        let _ = umount2("/sys", MntFlags::MNT_DETACH);
        mount(
            Some("sysfs"),
            "/sys",
            Some("sysfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| format!("mounting sysfs for the benchmark's network namespace: {e}"))?;

        let scratch = std::env::temp_dir().join(format!("ifup-bench.{}", std::process::id()));
        std::fs::create_dir_all(&scratch)
            .map_err(|e| format!("creating {}: {e}", scratch.display()))?;
        mount(
            Some("tmpfs"),
            &scratch,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=0755"),
        )
        .map_err(|e| format!("mounting a tmpfs on {}: {e}", scratch.display()))?;

        let (syslog, syslog_note) = match private_dev_log(&scratch) {
            Ok(count) => (
                Some(count),
                "a private `/dev/log` listener (an overlay on `/dev` in the benchmark's mount \
                 namespace): every change is logged as on a host running journald or rsyslog"
                    .to_string(),
            ),
            Err(e) => (
                None,
                format!("no private `/dev/log` ({e}): syslog messages were not sent"),
            ),
        };
        // With br_netfilter loaded, bridged traffic goes through iptables unless this per-namespace
        // sysctl is 0; qemu-ifup warns about it on every call. Model the host qemu-ifup recommends.
        let netfilter_note = Path::new(NF_CALL_IPTABLES).exists().then(|| {
            match std::fs::write(NF_CALL_IPTABLES, "0") {
                Ok(()) => format!(
                    "this host loads `br_netfilter`; in the benchmark's namespace `{NF_CALL_IPTABLES}` \
                     is 0, as qemu-ifup recommends (at 1 it prints and logs a warning on every call)"
                ),
                Err(e) => format!("this host loads `br_netfilter` and {NF_CALL_IPTABLES} could not be set to 0 ({e}): qemu-ifup warned on every call"),
            }
        });
        for f in FORWARDING {
            std::fs::write(f, "1").map_err(|e| format!("turning on {f}: {e}"))?;
        }
        let sandbox = Sandbox {
            scratch,
            syslog,
            syslog_note,
            fillers: 0,
            netfilter_note,
        };
        ip_batch(&[
            "link set lo up".to_string(),
            // A MAC set by the admin, as qemu-ifup recommends (it warns on every call about a
            // bridge whose MAC follows its ports).
            format!("link add {BRIDGE} address {BRIDGE_MAC} type bridge"),
            format!("link set {BRIDGE} up"),
            format!("address add {BRIDGE_ADDR} dev {BRIDGE}"),
            format!("route add default via {GATEWAY} dev {BRIDGE}"),
            format!("tuntap add dev {TAP} mode tap"),
        ])?;
        Ok(sandbox)
    }

    /// Add veth pairs until there are `target` filler links (rounded up to an even number).
    pub fn grow_fillers(&mut self, target: usize) -> Res<()> {
        let mut lines = Vec::new();
        while self.fillers < target {
            let n = self.fillers / 2;
            lines.push(format!("link add fl{n}a type veth peer name fl{n}b"));
            self.fillers += 2;
        }
        if !lines.is_empty() {
            ip_batch(&lines)?;
        }
        Ok(())
    }

    /// Overlays `/etc` (in the benchmark's mount namespace only; the upper layer is on the scratch
    /// tmpfs) and writes `files` (path relative to `/etc`, text) there, e.g. the bridge helper's
    /// `qemu/bridge.conf`.
    pub fn private_etc(&self, files: &[(&str, &str)]) -> Res<()> {
        let upper = self.scratch.join("etc-upper");
        let work = self.scratch.join("etc-work");
        std::fs::create_dir(&upper)?;
        std::fs::create_dir(&work)?;
        let opts = format!(
            "lowerdir=/etc,upperdir={},workdir={}",
            upper.display(),
            work.display()
        );
        mount(
            Some("overlay"),
            "/etc",
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
        .map_err(|e| format!("overlay mount on /etc: {e}"))?;
        for (rel, text) in files {
            let path = Path::new("/etc").join(rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Undoes [`Sandbox::private_etc`]: the host's `/etc` again (in this mount namespace).
    pub fn end_private_etc(&self) -> Res<()> {
        umount2("/etc", MntFlags::MNT_DETACH)
            .map_err(|e| format!("unmounting the overlay on /etc: {e}").into())
    }

    pub fn syslog_messages(&self) -> Option<usize> {
        self.syslog.as_ref().map(|c| c.load(Ordering::Relaxed))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // The namespaces go away with the process; only the empty mount point is on the host.
        let _ = umount2(&self.scratch, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.scratch);
    }
}

/// Overlay `/dev` (in this mount namespace only), replace `/dev/log` there with our own datagram
/// socket, and count what arrives on a thread that drains it.
fn private_dev_log(scratch: &Path) -> Res<Arc<AtomicUsize>> {
    let upper = scratch.join("dev-upper");
    let work = scratch.join("dev-work");
    std::fs::create_dir(&upper)?;
    std::fs::create_dir(&work)?;
    let opts = format!(
        "lowerdir=/dev,upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        "/dev",
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(|e| format!("overlay mount on /dev: {e}"))?;
    if std::fs::symlink_metadata("/dev/log").is_ok() {
        std::fs::remove_file("/dev/log")?;
    }
    let sock = UnixDatagram::bind("/dev/log")?;
    // As journald's and rsyslog's: every user may log (the setuid helpers log as the caller).
    std::fs::set_permissions("/dev/log", std::fs::Permissions::from_mode(0o666))?;
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::Builder::new()
        .name("dev-log".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            while sock.recv(&mut buf).is_ok() {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        })?;
    Ok(count)
}

/// Run `ip -batch -` with these lines; fail with ip's message.
pub fn ip_batch(lines: &[String]) -> Res<()> {
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running `ip -batch -`: {e} (is iproute2 installed?)"))?;
    {
        let mut stdin = child.stdin.take().ok_or("ip -batch: no stdin")?;
        let mut text = lines.join("\n");
        text.push('\n');
        stdin.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "`ip -batch -` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// Attachment state of a link, read back from sysfs and procfs (not through the code under test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No master, down (and so no routes: the kernel drops a link's routes when it goes down).
    Detached,
    /// Master `br0`, up.
    Attached,
    /// No master, up, with a route to [`ROUTE_V4`] through it, and one to [`ROUTE_V6`] iff `v6`.
    Routed { v6: bool },
}

pub fn state_of(link: &str) -> Res<State> {
    let base = Path::new("/sys/class/net").join(link);
    let master = std::fs::read_link(base.join("master")).ok();
    let flags = std::fs::read_to_string(base.join("flags"))
        .map_err(|e| format!("reading {}/flags: {e}", base.display()))?;
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)
        .map_err(|e| format!("parsing {}/flags: {e}", base.display()))?;
    let up = flags & 1 != 0;
    let on_bridge = master
        .as_deref()
        .and_then(Path::file_name)
        .is_some_and(|n| n == BRIDGE);
    match (master.is_some(), on_bridge, up) {
        (false, _, false) => Ok(State::Detached),
        (true, true, true) => Ok(State::Attached),
        (false, _, true) if routed_v4(link)? => Ok(State::Routed {
            v6: routed_v6(link)?,
        }),
        _ => Err(format!(
            "{link} is in no expected state: master {:?}, {}, no route to {ROUTE_V4}",
            master,
            if up { "up" } else { "down" }
        )
        .into()),
    }
}

/// Whether `/proc/net/route` (this network namespace's IPv4 routes) has `ROUTE_V4`/32 via `link`.
fn routed_v4(link: &str) -> Res<bool> {
    let want: Ipv4Addr = ROUTE_V4.parse()?;
    let text = std::fs::read_to_string("/proc/net/route")?;
    // Iface, Destination, Gateway, Flags, RefCnt, Use, Metric, Mask, ...; addresses are the
    // kernel's big-endian words printed as native-endian hex.
    let word = |h: &str| u32::from_str_radix(h, 16).map(|w| Ipv4Addr::from(w.to_ne_bytes()));
    Ok(text.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 7
            && f[0] == link
            && word(f[1]).ok() == Some(want)
            && word(f[7]).ok() == Some(Ipv4Addr::BROADCAST)
    }))
}

/// Whether `/proc/net/ipv6_route` has `ROUTE_V6`/128 via `link`.
fn routed_v6(link: &str) -> Res<bool> {
    let want: Ipv6Addr = ROUTE_V6.parse()?;
    let text = std::fs::read_to_string("/proc/net/ipv6_route")?;
    // Destination (32 hex digits), its prefix length (hex), ..., the device last.
    Ok(text.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 10
            && f[9] == link
            && u128::from_str_radix(f[0], 16).ok() == Some(u128::from(want))
            && f[1] == "80"
    }))
}

/// The `ip` command that puts a link into `state` (untimed preparation). Detaching also gives
/// the tap a MAC that does not start with fe, as a tap fresh from QEMU has, so that qemu-ifup
/// does its full work (address, master and up) on every call.
/// `n` makes the MAC unique among the taps of the concurrency test.
pub fn prepare_line(link: &str, n: u16, state: State) -> String {
    let [hi, lo] = n.to_be_bytes();
    match state {
        State::Detached => {
            format!("link set {link} nomaster down address 52:54:00:12:{hi:02x}:{lo:02x}")
        }
        State::Attached => format!("link set {link} master {BRIDGE} up"),
        State::Routed { .. } => unreachable!("no call starts from a routed tap"),
    }
}
