//! `ifup-bench --bridge-helper NAME=PATH …`: the cost of one bridge-helper call as QEMU makes it
//! (`-netdev bridge`): make a socket pair, spawn `PATH --use-vnet --fd=N --br=br0` with one end as
//! descriptor N, receive the tap's descriptor, wait for the exit. Timed from before the socket
//! pair to after the reap; each call is checked (exit 0, one descriptor, a tap that is up on
//! `br0`), then the descriptor is closed (untimed), which removes the tap. Helpers are interleaved
//! round by round, as in the main benchmark, and `/bin/true` (spawned and reaped the same way)
//! gives the process-spawn floor. The full benchmark puts the figures in its report (as root,
//! and setuid copies run by an unprivileged uid); `--bridge-helper` alone prints a Markdown table.

use std::fmt::Write as _;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ifup_testkit::bridge_helper::{recv_message, socket_pair, spawn_with_fd, ReceivedTap};

use crate::measure::{children_cpu, stat, Samples};
use crate::report::fmt_us;
use crate::sandbox::{state_of, State, BRIDGE, PATH};
use crate::Res;

/// The descriptor number the helper gets its socket on (what libvirt 9.0 happened to use).
pub const FD: i32 = 27;
/// Pause after each tap's removal (see [`settle`]).
const SETTLE: Duration = Duration::from_millis(3);
/// A call that takes longer than this has hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A helper to measure.
#[derive(Debug, Clone)]
pub struct Helper {
    pub name: String,
    pub path: PathBuf,
}

/// What to measure and how.
pub struct HelperOpts {
    pub helpers: Vec<Helper>,
    pub rounds: usize,
    pub warmup: usize,
    /// Run every call as this uid and gid (the helper must then be setuid root or have
    /// `cap_net_admin`); root otherwise.
    pub as_ids: Option<(u32, u32)>,
}

fn command(path: &PathBuf, args: &[String], ids: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(path);
    cmd.args(args)
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some((uid, gid)) = ids {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// One timed helper call, checked; returns (wall, CPU).
fn helper_call(h: &Helper, ids: Option<(u32, u32)>) -> Res<(Duration, Duration)> {
    let args = [
        "--use-vnet".to_owned(),
        format!("--fd={FD}"),
        format!("--br={BRIDGE}"),
    ];
    let cmd = command(&h.path, &args, ids);
    let cpu0 = children_cpu();
    let start = Instant::now();
    let (ours, theirs) = socket_pair();
    let child = spawn_with_fd(cmd, theirs, FD)
        .map_err(|e| format!("spawning {}: {e}", h.path.display()))?;
    let message = recv_message(ours.as_fd(), CALL_TIMEOUT);
    let out = child.wait_with_output()?;
    let took = start.elapsed();
    let cpu = children_cpu().saturating_sub(cpu0);
    let what = format!("`{} {}`", h.path.display(), args.join(" "));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = message
        .map_err(|e| format!("{what}: no message: {e}; stderr: {stderr}"))?
        .ok_or_else(|| format!("{what} sent nothing ({}): {stderr}", out.status))?;
    if !out.status.success() || message.fds.len() != 1 {
        return Err(format!(
            "{what}: {} with {} descriptors: {stderr}",
            out.status,
            message.fds.len()
        )
        .into());
    }
    let Some(fd) = message.fds.into_iter().next() else {
        return Err(format!("{what}: no descriptor").into());
    };
    let tap = ReceivedTap::from_fd(fd).map_err(|e| format!("{what}: not a tap: {e}"))?;
    let state = state_of(tap.name())?;
    if state != State::Attached {
        return Err(format!("{what}: {} is {state:?}, not up on {BRIDGE}", tap.name()).into());
    }
    let name = tap.name().to_owned();
    drop(tap);
    settle(&name);
    Ok((took, cpu))
}

/// Closing the last descriptor of a tap unregisters it, and the kernel finishes that work
/// (RCU callbacks, sysfs, uevents) after `close` returned: wait until the tap is gone, then a
/// little more, so that the next timed call does not share the CPU with it.
fn settle(tap: &str) {
    let sys = Path::new("/sys/class/net").join(tap);
    let deadline = Instant::now() + Duration::from_secs(2);
    while sys.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    std::thread::sleep(SETTLE);
}

/// `/bin/true`, spawned and reaped exactly like a helper (a socket pair, one end as descriptor
/// [`FD`], which makes std fork rather than `posix_spawn`, as QEMU and libvirt do): the floor.
fn floor_call(ids: Option<(u32, u32)>) -> Res<(Duration, Duration)> {
    let cmd = command(&PathBuf::from("/bin/true"), &[], ids);
    let cpu0 = children_cpu();
    let start = Instant::now();
    let (_ours, theirs) = socket_pair();
    let out = spawn_with_fd(cmd, theirs, FD)?.wait_with_output()?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!("/bin/true: {}", out.status).into());
    }
    Ok((took, children_cpu().saturating_sub(cpu0)))
}

/// A setuid-root copy of `src` in `dir` (which must be on a filesystem mounted without `nosuid`,
/// such as the sandbox's scratch tmpfs): what an unprivileged caller's QEMU runs.
pub fn setuid_copy(src: &Path, dir: &Path, name: &str) -> Res<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let dst = dir.join(name);
    std::fs::copy(src, &dst).map_err(|e| format!("copying {}: {e}", src.display()))?;
    std::os::unix::fs::chown(&dst, Some(0), Some(0))?;
    // chown clears the setuid bit, so the mode comes after it.
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o4755))?;
    Ok(dst)
}

/// Runs the measurement (inside the benchmark's sandbox, with an ACL allowing `br0`): the samples
/// of each helper, then of the floor.
pub fn measure(opts: &HelperOpts) -> Res<Vec<Samples>> {
    let n = opts.helpers.len() + 1; // + the floor
    let mut samples = vec![Samples::default(); n];
    for r in 0..opts.warmup + opts.rounds {
        for k in 0..n {
            let i = (k + r) % n;
            let (wall, cpu) = match opts.helpers.get(i) {
                Some(h) => helper_call(h, opts.as_ids)?,
                None => floor_call(opts.as_ids)?,
            };
            if r >= opts.warmup {
                samples[i].wall.push(wall.as_secs_f64() * 1e6);
                samples[i].cpu.push(cpu.as_secs_f64() * 1e6);
            }
        }
    }
    Ok(samples)
}

/// Who the calls ran as, for the report.
pub fn who(as_ids: Option<(u32, u32)>) -> String {
    match as_ids {
        Some((uid, gid)) => format!("uid {uid}, gid {gid}"),
        None => "root".to_owned(),
    }
}

/// The Markdown table of `--bridge-helper` alone.
pub fn table(opts: &HelperOpts, samples: &[Samples]) -> String {
    let who = who(opts.as_ids);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "One bridge-helper call as QEMU makes it (`HELPER --use-vnet --fd={FD} --br={BRIDGE}`: \
         socket pair, spawn, receive the tap, reap), run as {who}; {} interleaved rounds after {} \
         discarded.\n",
        opts.rounds, opts.warmup
    );
    let _ = writeln!(s, "| helper | median | p90 | CPU (median) |");
    let _ = writeln!(s, "| --- | ---: | ---: | ---: |");
    let labels = opts
        .helpers
        .iter()
        .map(|h| format!("{} (`{}`)", h.name, h.path.display()))
        .chain(["`/bin/true` (spawn floor)".to_owned()]);
    for (label, xs) in labels.zip(samples) {
        let w = stat(&xs.wall);
        let c = stat(&xs.cpu);
        let _ = writeln!(
            s,
            "| {label} | {} | {} | {} |",
            fmt_us(w.median),
            fmt_us(w.p90),
            fmt_us(c.median)
        );
    }
    s
}
