//! The measurements: interleaved per-call wall time, concurrent bursts, peak RSS.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};

use crate::sandbox::{ip_batch, prepare_line, state_of, State, BRIDGE, PATH, TAP};
use crate::Res;

/// One program doing (part of) the job, run as QEMU would run its ifup/ifdown script.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Short stable name, used in the report's tables and the plot's legend.
    pub key: &'static str,
    /// The command line as the report shows it.
    pub label: String,
    /// Program and arguments; `{tap}` stands for the tap's name.
    pub argv: Vec<String>,
    /// Further commands run one after the other once `argv` exited 0, timed with it (the same job
    /// done by hand with several programs); empty for most.
    pub more: Vec<Vec<String>>,
    /// The tap's state before each call (set untimed), if the call needs one.
    pub before: Option<State>,
    /// The state each call must leave the tap in (checked in sysfs after each call).
    pub after: Option<State>,
    /// Too slow for many samples (the classic script sleeps 0.5 s): only a few, spread out.
    pub sparse: bool,
}

impl Candidate {
    pub fn command(&self, tap: &str) -> Command {
        program(&self.argv, tap)
    }

    /// `argv`, then `more`, as commands.
    fn commands(&self, tap: &str) -> Vec<Command> {
        std::iter::once(&self.argv)
            .chain(&self.more)
            .map(|argv| program(argv, tap))
            .collect()
    }

    fn argv_for(&self, tap: &str) -> Vec<String> {
        self.argv.iter().map(|a| a.replace("{tap}", tap)).collect()
    }

    /// The whole command line, `more` included (` && ` between commands).
    fn line_for(&self, tap: &str) -> String {
        std::iter::once(&self.argv)
            .chain(&self.more)
            .map(|argv| argv.join(" ").replace("{tap}", tap))
            .collect::<Vec<_>>()
            .join(" && ")
    }
}

/// One program with a clean environment and `/dev/null` for stdin, stdout and stderr.
fn program(argv: &[String], tap: &str) -> Command {
    let mut argv = argv.iter().map(|a| a.replace("{tap}", tap));
    let mut cmd = Command::new(argv.next().unwrap_or_default());
    cmd.args(argv)
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Run one `ip` command line (untimed preparation).
fn ip(line: &str) -> Res<()> {
    let out = Command::new("ip")
        .args(line.split_whitespace())
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running `ip {line}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`ip {line}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// Why a call failed, by running the failed command again with its output captured.
fn explain(cand: &Candidate, step: usize, tap: &str, status: std::process::ExitStatus) -> String {
    let mut cmd = cand
        .commands(tap)
        .into_iter()
        .nth(step)
        .unwrap_or_else(|| cand.command(tap));
    let again = cmd.stderr(Stdio::piped()).stdout(Stdio::piped()).output();
    let detail = match again {
        Ok(o) => format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout).trim(),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => e.to_string(),
    };
    format!(
        "`{}` (command {}) exited with {status}: {detail}",
        cand.line_for(tap),
        step + 1
    )
}

/// The CPU time (user + system) of all reaped children so far. Linux accounts it from the
/// scheduler's nanosecond runtime, so the difference around one call is that call's CPU time.
pub(crate) fn children_cpu() -> Duration {
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(Duration::ZERO, |u| {
        let us = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec().max(0) as u64)
                + Duration::from_micros(t.tv_usec().max(0) as u64)
        };
        us(u.user_time()) + us(u.system_time())
    })
}

/// One timed call: the tap is put into `before` untimed, then the whole process is timed from
/// spawn to reaped, then the result is checked. Returns (wall time, CPU time) of the call.
fn one_call(cand: &Candidate) -> Res<(Duration, Duration)> {
    if let Some(state) = cand.before {
        ip(&prepare_line(TAP, 0, state))?;
    }
    let mut cmds = cand.commands(TAP);
    let cpu0 = children_cpu();
    let start = Instant::now();
    let mut failed = None;
    for (step, cmd) in cmds.iter_mut().enumerate() {
        let status = cmd
            .status()
            .map_err(|e| format!("spawning {}: {e}", cand.argv[0]))?;
        if !status.success() {
            failed = Some((step, status));
            break;
        }
    }
    let took = start.elapsed();
    let cpu = children_cpu().saturating_sub(cpu0);
    if let Some((step, status)) = failed {
        return Err(explain(cand, step, TAP, status).into());
    }
    if let Some(want) = cand.after {
        let got = state_of(TAP)?;
        if got != want {
            return Err(format!(
                "`{}` exited 0 but left {TAP} {got:?}, not {want:?}",
                cand.line_for(TAP)
            )
            .into());
        }
    }
    Ok((took, cpu))
}

/// Per-call samples in µs of each candidate.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// Whole-process wall time, spawn to reaped.
    pub wall: Vec<f64>,
    /// CPU time (user + system) of the process and anything it ran.
    pub cpu: Vec<f64>,
}

/// Samples of each candidate from `rounds` interleaved rounds after `warmup` discarded ones.
/// Each round runs every candidate once (sparse ones only in every `rounds / sparse_samples`-th
/// round), in an order rotated by one each round.
pub fn interleaved(
    cands: &[Candidate],
    warmup: usize,
    rounds: usize,
    sparse_samples: usize,
) -> Res<Vec<Samples>> {
    let mut out = vec![Samples::default(); cands.len()];
    let stride = (rounds / sparse_samples.max(1)).max(1);
    for r in 0..warmup + rounds {
        for k in 0..cands.len() {
            let i = (k + r) % cands.len();
            let cand = &cands[i];
            let counted = r >= warmup;
            if cand.sparse
                && (!counted || (r - warmup) % stride != 0 || out[i].wall.len() >= sparse_samples)
            {
                continue;
            }
            let (wall, cpu) = one_call(cand)?;
            if counted {
                out[i].wall.push(wall.as_secs_f64() * 1e6);
                out[i].cpu.push(cpu.as_secs_f64() * 1e6);
            }
        }
    }
    Ok(out)
}

/// Median and 90th percentile of a sample, in the sample's unit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stat {
    pub median: f64,
    pub p90: f64,
}

pub fn stat(xs: &[f64]) -> Stat {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return Stat::default();
    }
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    // Nearest rank.
    let p90 = v[((n * 9).div_ceil(10)).max(1) - 1];
    Stat { median, p90 }
}

/// Result of launching `n` calls at once, `reps` times.
#[derive(Debug, Clone)]
pub struct Burst {
    pub key: &'static str,
    pub label: String,
    pub n: usize,
    /// Wall time of each repetition, first spawn to last reaped, in ms.
    pub wall_ms: Vec<f64>,
    /// Calls that exited non-zero, over all repetitions.
    pub failed: usize,
    /// Calls that exited 0 but left their tap detached or down, over all repetitions.
    pub not_attached: usize,
    /// The first failure's message, if any.
    pub first_error: Option<String>,
}

pub fn burst_tap(i: usize) -> String {
    format!("ct{i}")
}

/// Create the `n` taps of the concurrency test.
pub fn create_burst_taps(n: usize) -> Res<()> {
    let lines: Vec<String> = (0..n)
        .map(|i| format!("tuntap add dev {} mode tap", burst_tap(i)))
        .collect();
    ip_batch(&lines)
}

/// `n` concurrent calls of each candidate, on `n` detached taps, all attaching to `br0`;
/// interleaved over `reps` repetitions.
pub fn bursts(cands: &[&Candidate], n: usize, reps: usize) -> Res<Vec<Burst>> {
    let mut out: Vec<Burst> = cands
        .iter()
        .map(|c| Burst {
            key: c.key,
            label: c.label.clone(),
            n,
            wall_ms: Vec::new(),
            failed: 0,
            not_attached: 0,
            first_error: None,
        })
        .collect();
    for _ in 0..reps {
        for (cand, res) in cands.iter().zip(out.iter_mut()) {
            let detach: Vec<String> = (0..n)
                .map(|i| prepare_line(&burst_tap(i), i as u16, State::Detached))
                .collect();
            ip_batch(&detach)?;
            let mut cmds: Vec<Command> = (0..n)
                .map(|i| {
                    let mut c = cand.command(&burst_tap(i));
                    c.stderr(Stdio::piped());
                    c
                })
                .collect();
            let start = Instant::now();
            let children: Vec<Child> = cmds
                .iter_mut()
                .map(|c| c.spawn())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("spawning {}: {e}", cand.argv[0]))?;
            let outputs: Vec<_> = children
                .into_iter()
                .map(Child::wait_with_output)
                .collect::<Result<_, _>>()?;
            res.wall_ms.push(start.elapsed().as_secs_f64() * 1e3);
            for (i, o) in outputs.iter().enumerate() {
                if !o.status.success() {
                    res.failed += 1;
                    res.first_error.get_or_insert_with(|| {
                        format!(
                            "{} on {}: {} {}",
                            cand.key,
                            burst_tap(i),
                            o.status,
                            String::from_utf8_lossy(&o.stderr).trim()
                        )
                    });
                } else if state_of(&burst_tap(i)).ok() != Some(State::Attached) {
                    res.not_attached += 1;
                    res.first_error.get_or_insert_with(|| {
                        format!(
                            "{} on {}: exited 0 but the tap is not up on {BRIDGE}",
                            cand.key,
                            burst_tap(i)
                        )
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `ifup-bench --rss-probe PROG ARGS…`: run PROG in a fresh, small process, wait for it, print
/// `ru_maxrss` (KiB) of the children — exactly one — and exit with PROG's status.
///
/// On Linux a child's `ru_maxrss` also counts the parent's resident pages at fork/vfork time (exec
/// carries the high-water mark over), so the report shows `/bin/true` measured the same way: that
/// is the floor this method cannot see below.
pub fn rss_probe_main(args: &[OsString]) -> i32 {
    let Some((prog, rest)) = args.split_first() else {
        eprintln!("ifup-bench --rss-probe: no program given");
        return 2;
    };
    // Setting the uid (to our own) makes std fork instead of vfork/posix_spawn: a forked child
    // starts with only the anonymous pages it copied, not the parent's whole resident set, so the
    // floor of this method drops to a few hundred KiB.
    let status = match Command::new(prog)
        .args(rest)
        .uid(nix::unistd::getuid().as_raw())
        .status()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ifup-bench --rss-probe: {}: {e}", Path::new(prog).display());
            return 2;
        }
    };
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(u) => println!("{}", u.max_rss()),
        Err(e) => {
            eprintln!("ifup-bench --rss-probe: getrusage: {e}");
            return 2;
        }
    }
    status.code().unwrap_or(2)
}

/// Peak RSS in KiB of one call: the largest of `reps` probes.
pub fn peak_rss(cand: &Candidate, reps: usize) -> Res<u64> {
    let me: PathBuf = std::env::current_exe()?;
    let mut peak = 0u64;
    for _ in 0..reps {
        if let Some(state) = cand.before {
            ip(&prepare_line(TAP, 0, state))?;
        }
        let out = Command::new(&me)
            .arg("--rss-probe")
            .args(cand.argv_for(TAP))
            .env_clear()
            .env("PATH", PATH)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "peak RSS of `{}`: {} {}",
                cand.argv_for(TAP).join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        // The probe prints its figure last, after anything the program printed.
        let kib: u64 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .parse()
            .map_err(|e| format!("peak RSS probe printed something odd: {e}"))?;
        peak = peak.max(kib);
    }
    Ok(peak)
}

/// Leave the tap detached (for the next phase).
pub fn reset_tap() -> Res<()> {
    ip(&prepare_line(TAP, 0, State::Detached))
}
