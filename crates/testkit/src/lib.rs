//! ifup-testkit: dev-only helpers for the qemu-ifup-rs integration tests.
//!
//! - [`Netns::new`] moves the calling test thread into a fresh network namespace. Every helper here that runs `ip` or QEMU refuses to run outside one, so a test can
//!   never change the host's interfaces by mistake.
//! - [`ip`], [`link`] and the fixtures ([`add_bridge`], [`add_tap`], …) create and inspect links.
//! - [`run`] / [`run_as`] run a binary under test with a clean environment.
//! - [`GuestImage`] and [`Qemu`] boot a tiny Linux guest under QEMU (TCG) whose NIC is a tap set up
//!   by the `script=`/`downscript=` under test, or (`-netdev bridge`) by a bridge helper; the guest
//!   pings the host and reports on its console.
//! - [`bridge_helper`] runs a `qemu-bridge-helper` the way QEMU and libvirt do and receives the tap
//!   it sends; [`libvirt`] runs a private `libvirtd`: for `qemu:///session` as an unprivileged
//!   user, or for `qemu:///system` as root.
//!
//! Privileged helpers fail loudly ([`require_root`]) rather than skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bins;
pub mod bridge_helper;
pub mod bridge_tool;
mod cpio;
mod guest;
mod guest_builder;
pub mod libvirt;
pub mod privileged;
mod qemu;
mod sys;
pub mod tapio;

pub use guest::{marker, GuestImage};
pub use guest_builder::GuestBuilder;
pub use qemu::{NicModel, Qemu, QemuExit, QemuOptions, QEMU_TIMEOUT};

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use serde_json::Value;

/// The `PATH` given to every program the testkit runs (after `env_clear()`).
pub const CLEAN_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Panics unless the effective uid is 0. Privileged tests must fail loudly, never skip.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "this test needs root (CAP_NET_ADMIN, /dev/net/tun, network namespaces): \
             run it as root, e.g. `sudo -E cargo test`"
        );
    }
}

thread_local! {
    /// True while this thread is inside a namespace made by [`Netns::new`].
    static IN_TEST_NETNS: Cell<bool> = const { Cell::new(false) };
}

/// Panics unless the calling thread is inside a [`Netns`]: the guard that keeps tests off the
/// host's real interfaces.
fn assert_in_test_netns(what: &str) {
    if !IN_TEST_NETNS.get() {
        panic!(
            "{what}: call `let _ns = ifup_testkit::Netns::new();` first, on this thread — \
             the testkit refuses to touch the host's network namespace"
        );
    }
}

/// A fresh network namespace for the calling thread.
///
/// `Netns::new()` unshares `CLONE_NEWNET` on the current thread only (libtest runs each test on
/// its own thread), so links named `br0` in two tests never meet, and processes spawned from this
/// thread (QEMU, the binaries under test) inherit the namespace. Dropping it (also when the test
/// panics) moves the thread back to its original namespace; the test namespace and every link in
/// it (persistent taps included) vanish once no process is left in it.
///
/// Bound to its thread: it is neither `Send` nor `Sync`.
#[must_use = "the namespace is left as soon as the Netns is dropped: keep it in a `let _ns`"]
pub struct Netns {
    original: OwnedFd,
    _thread_bound: PhantomData<*const ()>,
}

impl Netns {
    /// Requires root, unshares the network namespace of this thread, checks that the new
    /// namespace holds only `lo`, and brings `lo` up.
    #[allow(clippy::new_without_default)] // not a default value: it needs root and changes the thread
    pub fn new() -> Netns {
        require_root();
        assert!(
            !IN_TEST_NETNS.get(),
            "Netns::new() called twice on one thread: keep one Netns per test"
        );
        let ns_path = "/proc/thread-self/ns/net";
        let original_file =
            File::open(ns_path).unwrap_or_else(|e| panic!("cannot open {ns_path}: {e}"));
        let original_ino = original_file.metadata().unwrap().ino();
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("unshare(CLONE_NEWNET) failed: {e}"));
        let netns = Netns {
            original: original_file.into(),
            _thread_bound: PhantomData,
        };
        IN_TEST_NETNS.set(true);

        let new_ino = std::fs::metadata(ns_path).unwrap().ino();
        assert_ne!(
            new_ino, original_ino,
            "unshare(CLONE_NEWNET) returned but the thread is still in its old namespace"
        );
        let names: Vec<String> = links().into_iter().map(|l| l.name).collect();
        assert_eq!(
            names,
            ["lo"],
            "a fresh network namespace should hold only `lo`"
        );
        ip(&["link", "set", "lo", "up"]);
        // Where br_netfilter is loaded (Docker hosts, for one), every new namespace starts with
        // bridged traffic going through iptables, which qemu-ifup warns about: start quiet and
        // hermetic (a test about it turns it back on).
        for table in ["iptables", "ip6tables", "arptables"] {
            let path = format!("/proc/sys/net/bridge/bridge-nf-call-{table}");
            if Path::new(&path).exists() {
                std::fs::write(&path, "0").unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
            }
        }
        netns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        IN_TEST_NETNS.set(false);
        if let Err(e) = nix::sched::setns(&self.original, CloneFlags::CLONE_NEWNET) {
            // Not a panic: this may run while unwinding. The thread ends with the test anyway.
            eprintln!("ifup-testkit: could not return to the original network namespace: {e}");
        }
    }
}

/// The first `name` in [`CLEAN_PATH`]. Panics, naming the Debian `package` that installs it, if
/// there is none.
pub fn tool(name: &str, package: &str) -> PathBuf {
    CLEAN_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found in {CLEAN_PATH}: install {package} (scripts/deps.sh installs \
                 everything the tests need)"
            )
        })
}

/// Path of the `ip` program (iproute2).
pub fn ip_path() -> &'static Path {
    static IP: OnceLock<PathBuf> = OnceLock::new();
    IP.get_or_init(|| tool("ip", "iproute2"))
}

/// Runs `ip ARGS` in the test namespace and returns its output, whatever its exit status.
pub fn try_ip(args: &[&str]) -> Output {
    try_iproute2("ip", ip_path(), args)
}

/// Runs `ip ARGS` in the test namespace; panics with its stderr if it fails. Returns stdout.
pub fn ip(args: &[&str]) -> String {
    iproute2("ip", ip_path(), args)
}

/// Runs the iproute2 program `name` (at `path`) with `args` in the test namespace, with a clean
/// environment, and returns its output, whatever its exit status.
fn try_iproute2(name: &str, path: &Path, args: &[&str]) -> Output {
    assert_in_test_netns(&format!("{name} {}", args.join(" ")));
    Command::new(path)
        .args(args)
        .env_clear()
        .env("PATH", CLEAN_PATH)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()))
}

/// Like [`try_iproute2`], but panics with its stderr if it fails. Returns stdout.
fn iproute2(name: &str, path: &Path, args: &[&str]) -> String {
    let out = try_iproute2(name, path, args);
    if !out.status.success() {
        panic!(
            "`{name} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network interface as `ip -j -d link show` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub ifindex: u32,
    /// `linkinfo.info_kind`: `"tun"` (taps too), `"bridge"`, `"veth"`; `None` for `lo`.
    pub kind: Option<String>,
    /// Name of the master (bridge) device, if enslaved.
    pub master: Option<String>,
    pub mtu: u32,
    /// `IFF_UP` (administratively up), not carrier.
    pub up: bool,
    /// Hardware address; `None` for links without one (tun).
    pub address: Option<String>,
    /// Set for `kind == "tun"` links.
    pub tun: Option<TunInfo>,
    /// Bridge-port settings, set when the master is a bridge.
    pub bridge_port: Option<BridgePort>,
}

/// `linkinfo.info_data` of a tun/tap link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunInfo {
    /// true for a tap (`type tap`), false for a tun.
    pub tap: bool,
    /// `tuntap … user`: the owner uid.
    pub owner: Option<u32>,
    /// `tuntap … group`: the group gid.
    pub group: Option<u32>,
    /// Persistent (survives its last fd being closed).
    pub persist: bool,
    pub multi_queue: bool,
    pub vnet_hdr: bool,
}

/// `linkinfo.info_slave_data` of a bridge port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePort {
    pub isolated: bool,
    pub hairpin: bool,
    pub learning: bool,
    pub flood: bool,
}

impl Link {
    /// Parses one element of `ip -j -d link show`.
    fn from_json(v: &Value) -> Link {
        let ctx = || format!("`ip -j -d link show` entry {v}");
        let str_at = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        let u32_at = |key: &str| {
            v.get(key)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or_else(|| panic!("no numeric {key:?} in {}", ctx()))
        };
        let flags: Vec<&str> = v
            .get("flags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let linkinfo = v.get("linkinfo");
        let kind = linkinfo
            .and_then(|li| li.get("info_kind"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let tun = match (kind.as_deref(), linkinfo.and_then(|li| li.get("info_data"))) {
            (Some("tun"), Some(data)) => Some(TunInfo::from_json(data)),
            _ => None,
        };
        let bridge_port = match (
            linkinfo
                .and_then(|li| li.get("info_slave_kind"))
                .and_then(Value::as_str),
            linkinfo.and_then(|li| li.get("info_slave_data")),
        ) {
            (Some("bridge"), Some(data)) => {
                let flag = |key: &str| data.get(key).and_then(Value::as_bool).unwrap_or(false);
                Some(BridgePort {
                    isolated: flag("isolated"),
                    hairpin: flag("hairpin"),
                    learning: flag("learning"),
                    flood: flag("flood"),
                })
            }
            _ => None,
        };
        Link {
            name: str_at("ifname").unwrap_or_else(|| panic!("no ifname in {}", ctx())),
            ifindex: u32_at("ifindex"),
            kind,
            master: str_at("master"),
            mtu: u32_at("mtu"),
            up: flags.contains(&"UP"),
            address: str_at("address"),
            tun,
            bridge_port,
        }
    }
}

impl TunInfo {
    fn from_json(data: &Value) -> TunInfo {
        let flag = |key: &str| data.get(key).and_then(Value::as_bool).unwrap_or(false);
        TunInfo {
            tap: data.get("type").and_then(Value::as_str) == Some("tap"),
            owner: data.get("user").map(|u| id_from_json(u, IdKind::User)),
            group: data.get("group").map(|g| id_from_json(g, IdKind::Group)),
            persist: flag("persist"),
            multi_queue: flag("multi_queue"),
            vnet_hdr: flag("vnet_hdr"),
        }
    }
}

enum IdKind {
    User,
    Group,
}

/// `ip -j` prints a tap's owner and group as names when they resolve, else as numbers.
fn id_from_json(v: &Value, kind: IdKind) -> u32 {
    if let Some(n) = v.as_u64() {
        return u32::try_from(n).unwrap_or_else(|_| panic!("id {n} out of range"));
    }
    let name = v
        .as_str()
        .unwrap_or_else(|| panic!("tun user/group is neither a number nor a name: {v}"));
    let id = match kind {
        IdKind::User => nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw()),
        IdKind::Group => nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw()),
    };
    id.unwrap_or_else(|| panic!("`ip` printed tun owner/group {name:?}, which does not resolve"))
}

fn parse_links(json: &str, what: &str) -> Vec<Link> {
    let v: Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("cannot parse the JSON of `{what}`: {e}: {json}"));
    v.as_array()
        .unwrap_or_else(|| panic!("`{what}` did not print a JSON array: {json}"))
        .iter()
        .map(Link::from_json)
        .collect()
}

/// The link named `name` in the test namespace, or `None` if there is none.
pub fn link(name: &str) -> Option<Link> {
    let args = ["-j", "-d", "link", "show", "dev", name];
    let out = try_ip(&args);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("does not exist") {
            return None;
        }
        panic!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            stderr.trim()
        );
    }
    let mut found = parse_links(&String::from_utf8_lossy(&out.stdout), &args.join(" "));
    assert_eq!(found.len(), 1, "`ip {}` listed {found:?}", args.join(" "));
    found.pop()
}

/// Like [`link`], but panics with a clear message if the link does not exist.
pub fn expect_link(name: &str) -> Link {
    link(name).unwrap_or_else(|| panic!("link {name:?} does not exist in the test namespace"))
}

/// All links of the test namespace.
pub fn links() -> Vec<Link> {
    parse_links(&ip(&["-j", "-d", "link", "show"]), "ip -j -d link show")
}

/// The taps (tun links) of the test namespace.
pub fn taps() -> Vec<Link> {
    links()
        .into_iter()
        .filter(|l| l.kind.as_deref() == Some("tun"))
        .collect()
}

/// The names of the ports of `bridge` (the links whose master it is), in the test namespace.
pub fn ports(bridge: &str) -> Vec<String> {
    links()
        .into_iter()
        .filter(|l| l.master.as_deref() == Some(bridge))
        .map(|l| l.name)
        .collect()
}

/// Polls `cond` every 20 ms until it returns `Some`; panics after `timeout`, naming `what`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = cond() {
            return t;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures. All run in the test namespace and panic on failure.

/// Creates bridge `name` (STP off, the kernel default) and brings it up. With `mtu`, sets it
/// afterwards with `ip link set … mtu`, which marks the MTU as set by the user, so the kernel
/// keeps it when ports join instead of following the smallest port.
pub fn add_bridge(name: &str, mtu: Option<u32>) {
    ip(&["link", "add", name, "type", "bridge"]);
    if let Some(mtu) = mtu {
        set_mtu(name, mtu);
    }
    set_up(name);
}

/// Creates bridge `name`, up, with address `cidr_v4` (e.g. `10.0.2.1/24`), and makes it carry
/// the IPv4 default route (`ip route add default dev NAME`). A bridge with no port has no carrier;
/// the kernel accepts the route anyway (flagged `linkdown`), and it works once a port is up.
pub fn add_bridge_with_default_route(name: &str, cidr_v4: &str) {
    add_bridge(name, None);
    ip(&["addr", "add", cidr_v4, "dev", name]);
    ip(&["route", "add", "default", "dev", name]);
}

/// A route of the main table, as `ip -j route show table main` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// `192.0.2.10`, `198.51.100.0/28`, `default`.
    pub dst: String,
    pub dev: Option<String>,
    /// `112`, `kernel`, `boot`, …
    pub protocol: String,
    /// `blackhole`, … (`unicast` when `ip` omits it).
    pub kind: String,
}

/// The main table's routes of the test namespace (IPv6 with `v6`), without IPv6 link-local and
/// multicast routes.
pub fn routes(v6: bool) -> Vec<RouteEntry> {
    let family = if v6 { "-6" } else { "-4" };
    let out = ip(&["-j", family, "route", "show", "table", "main"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j route: {e}: {out}"));
    let s = |r: &Value, k: &str| r[k].as_str().map(str::to_owned);
    v.as_array()
        .expect("ip -j route prints an array")
        .iter()
        .map(|r| RouteEntry {
            dst: s(r, "dst").unwrap_or_default(),
            dev: s(r, "dev"),
            protocol: s(r, "protocol").unwrap_or_else(|| r["protocol"].to_string()),
            kind: s(r, "type").unwrap_or_else(|| "unicast".to_owned()),
        })
        .filter(|r| !r.dst.starts_with("fe80:") && !r.dst.starts_with("ff00:"))
        .collect()
}

/// Creates persistent tap `name` (`ip tuntap add mode tap [user U] [group G]`), down, no master,
/// with the MAC [`tap_mac`] of its name (the kernel's random one may already start with a high
/// byte, which `tap-mac fe` leaves alone: tests need to know which case they get).
pub fn add_tap(name: &str, owner: Option<u32>, group: Option<u32>) {
    let (owner, group) = (owner.map(|u| u.to_string()), group.map(|g| g.to_string()));
    let mut args = vec!["tuntap", "add", "dev", name, "mode", "tap"];
    if let Some(owner) = &owner {
        args.extend(["user", owner.as_str()]);
    }
    if let Some(group) = &group {
        args.extend(["group", group.as_str()]);
    }
    ip(&args);
    ip(&["link", "set", "dev", name, "address", &tap_mac(name)]);
}

/// The MAC [`add_tap`] gives tap `name`: `52:54:00:` and three bytes of a hash of the name.
pub fn tap_mac(name: &str) -> String {
    let h = name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let [a, b, c, _] = h.to_be_bytes();
    format!("52:54:00:{a:02x}:{b:02x}:{c:02x}")
}

/// Creates persistent tun (layer 3, not a tap) `name`.
pub fn add_tun(name: &str) {
    ip(&["tuntap", "add", "dev", name, "mode", "tun"]);
}

/// Creates the veth pair `a` / `b`, both down.
pub fn add_veth(a: &str, b: &str) {
    ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
}

pub fn set_master(dev: &str, bridge: &str) {
    ip(&["link", "set", "dev", dev, "master", bridge]);
}

pub fn set_nomaster(dev: &str) {
    ip(&["link", "set", "dev", dev, "nomaster"]);
}

pub fn set_up(dev: &str) {
    ip(&["link", "set", "dev", dev, "up"]);
}

pub fn set_down(dev: &str) {
    ip(&["link", "set", "dev", dev, "down"]);
}

pub fn set_mtu(dev: &str, mtu: u32) {
    ip(&["link", "set", "dev", dev, "mtu", &mtu.to_string()]);
}

pub fn del_link(dev: &str) {
    ip(&["link", "del", "dev", dev]);
}

// ---------------------------------------------------------------------------------------------
// Running binaries.

/// Real and group ids to run a child as (`setgid`, `setuid`; supplementary groups are cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
}

/// What a finished program left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// Exit status; `128 + N` if killed by signal N, as a shell reports it.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// Panics with the whole output unless the exit status is 0.
    pub fn assert_success(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        self
    }
}

/// `128 + signal` for a signal death, as a shell reports it.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

fn clean_command(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_clear()
        .env("PATH", CLEAN_PATH)
        .envs(env.iter().map(|&(k, v)| (OsStr::new(k), OsStr::new(v))));
    cmd
}

fn output_of(mut cmd: Command, what: &Path) -> RunOutput {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", what.display()));
    RunOutput {
        code: exit_code(out.status),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `bin ARGS` with a cleared environment plus `PATH=`[`CLEAN_PATH`] and `env`, stdin
/// `/dev/null`, and waits for it. It runs in the calling thread's network namespace: inside a
/// [`Netns`] for anything that touches links (this is not checked, so that `--help`-style tests
/// can run without root).
pub fn run(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> RunOutput {
    output_of(clean_command(bin, args, env), bin)
}

/// The arguments of `unshare` that run a shell command (the next argument) in a mount namespace
/// of its own whose mounts do not propagate back to the host.
pub const PRIVATE_MOUNT_SH: [&str; 6] =
    ["--mount", "--propagation", "private", "--", "/bin/sh", "-c"];

/// Like [`run`], in a mount namespace of its own where `/sys` is a sysfs mounted from the calling
/// thread's network namespace (sysfs shows the devices of the namespace it was mounted in: the
/// test process's `/sys` shows the host's).
pub fn run_with_own_sysfs(bin: &Path, args: &[&str]) -> RunOutput {
    assert_in_test_netns(&format!("{} with its own /sys", bin.display()));
    let mut all: Vec<&str> = PRIVATE_MOUNT_SH.to_vec();
    all.push("mount -t sysfs sysfs /sys && exec \"$0\" \"$@\"");
    let bin_str = bin.to_str().expect("a UTF-8 path");
    all.push(bin_str);
    all.extend_from_slice(args);
    output_of(
        clean_command(&tool("unshare", "util-linux"), &all, &[]),
        bin,
    )
}

/// Like [`run`], as `creds` (needs root).
pub fn run_as(bin: &Path, args: &[&str], env: &[(&str, &str)], creds: Creds) -> RunOutput {
    let mut cmd = clean_command(bin, args, env);
    cmd.uid(creds.uid).gid(creds.gid);
    output_of(cmd, bin)
}

/// The bytes of a child's pipe, read to its end by a thread of its own, so that a child can be
/// waited for with a deadline while it writes.
pub(crate) struct PipeReader(mpsc::Receiver<Vec<u8>>);

impl PipeReader {
    pub(crate) fn spawn(mut pipe: impl Read + Send + 'static) -> PipeReader {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
        PipeReader(rx)
    }

    /// Everything written, once every writer closed the pipe; what a descendant that keeps it
    /// open longer than `timeout` writes is lost (and said so).
    pub(crate) fn text(self, timeout: Duration) -> String {
        match self.0.recv_timeout(timeout) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => format!("(the pipe was still open {timeout:?} after the process exited)"),
        }
    }
}

/// Waits for `child` until `deadline`; `None` if it still runs then.
pub(crate) fn wait_until_deadline(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("waitpid") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `cmd` (its stdin is set to `/dev/null`, stdout and stderr captured) and waits for it at
/// most `timeout`; on timeout kills it and panics, naming `what` and showing what it printed.
pub(crate) fn output_within(mut cmd: Command, timeout: Duration, what: &str) -> RunOutput {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = PipeReader::spawn(child.stdout.take().unwrap());
    let stderr = PipeReader::spawn(child.stderr.take().unwrap());
    let status = wait_until_deadline(&mut child, Instant::now() + timeout);
    let grace = Duration::from_secs(5);
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{what} did not finish within {timeout:?}; it printed:\n--- stdout ---\n{}\n--- stderr ---\n{}",
            stdout.text(grace),
            stderr.text(grace)
        );
    };
    RunOutput {
        code: exit_code(status),
        stdout: stdout.text(grace),
        stderr: stderr.text(grace),
    }
}
