//! `ifup-bench`: whole-process wall time of `qemu-ifup` / `qemu-ifdown` against the programs
//! people use for the same job (bridged and routed taps, and the bridge-helper call against
//! Debian's `qemu-bridge-helper`), in a network namespace of its own; writes
//! `docs/PERFORMANCE.md` and `docs/perf-links.svg`. Run it as root through `scripts/bench.sh`;
//! `--help` lists the knobs.
//!
//! Only the standard library and nix: the figure of interest is one spawned process, start to
//! reaped, so `std::process` + `std::time::Instant` is the whole harness.

// A benchmark driver: a failed setup step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helper;
mod measure;
mod report;
mod sandbox;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use measure::Candidate;
use report::{HelperRun, Machine, Results};
use sandbox::{Sandbox, State, BRIDGE, PATH, ROUTE_V4, ROUTE_V6, TAP};

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Debian's bridge helper (package `qemu-system-common`), QEMU's default `helper=` there.
const DEBIAN_HELPER: &str = "/usr/lib/qemu/qemu-bridge-helper";
/// The unprivileged caller of the setuid bridge-helper copies (no account needed).
const HELPER_USER: (u32, u32) = (4242, 4242);

const HELP: &str = "\
ifup-bench: benchmark qemu-ifup-rs (run as root; normally through scripts/bench.sh)

Measures, interleaved, in a network namespace of its own: qemu-ifup / qemu-ifdown against ip,
Debian's /etc/qemu-ifup and the classic script, at each number of other links; 200 concurrent
calls; peak RSS; routed taps (qemu-ifup with a `tap TAP route` rule against ip link + ip route);
one bridge-helper call, ours against Debian's qemu-bridge-helper, as root and as uid 4242 running
setuid-root copies. Writes PERFORMANCE.md and perf-links.svg.

usage: ifup-bench [OPTIONS]
  --bin-dir DIR          where qemu-ifup and qemu-ifdown are (default: the workspace's
                         target/release, or $CARGO_TARGET_DIR/release)
  --out DIR              where PERFORMANCE.md and perf-links.svg go (default: the workspace's docs/)
  --rounds N             interleaved rounds per link count (default 300)
  --warmup N             discarded rounds before them (default 20)
  --links LIST           other links in the namespace, comma separated (default 0,500,1000,2000,4000)
  --classic-samples N    samples of the classic script (it sleeps 0.5 s) per link count (default 5)
  --burst N              concurrent calls in the burst test (default 200)
  --burst-reps N         repetitions of the burst test (default 3)
  --quick                a smoke run: 20 rounds, links 0,4000, 2 classic samples, 1 burst
  --variant NAME=DIR     also measure DIR/qemu-ifup and DIR/qemu-ifdown (another build, for
                         an optimisation's A/B), interleaved with the rest; repeatable

  --bridge-helper NAME=PATH
                         instead of all the above: time one bridge-helper call as QEMU makes it
                         (`PATH --use-vnet --fd=N --br=br0`, receive the tap, reap), interleaved
                         with the other helpers given and /bin/true; prints a Markdown table
                         (median, p90, CPU) and writes no file; repeatable. The helper reads a
                         private /etc/qemu/bridge.conf that allows br0. Uses --rounds, --warmup
  --helper-as UID:GID    with --bridge-helper: run the calls as UID:GID (setuid / setcap copies)
";

struct Opts {
    bin_dir: PathBuf,
    out: PathBuf,
    rounds: usize,
    warmup: usize,
    links: Vec<usize>,
    classic_samples: usize,
    burst: usize,
    burst_reps: usize,
    variants: Vec<(String, PathBuf)>,
    bridge_helpers: Vec<helper::Helper>,
    helper_as: Option<(u32, u32)>,
}

fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    here.canonicalize().unwrap_or(here)
}

fn parse_opts(args: &[OsString]) -> Res<Opts> {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let mut o = Opts {
        bin_dir: target.join("release"),
        out: root.join("docs"),
        rounds: 300,
        warmup: 20,
        links: vec![0, 500, 1000, 2000, 4000],
        classic_samples: 5,
        burst: 200,
        burst_reps: 3,
        variants: Vec::new(),
        bridge_helpers: Vec::new(),
        helper_as: None,
    };
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let num = |name: &str, v: String| -> Res<usize> {
            v.parse()
                .map_err(|_| format!("{name}: not a number: {v}").into())
        };
        match a.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "--bin-dir" => o.bin_dir = val("--bin-dir")?.into(),
            "--out" => o.out = val("--out")?.into(),
            "--rounds" => o.rounds = num("--rounds", val("--rounds")?)?,
            "--warmup" => o.warmup = num("--warmup", val("--warmup")?)?,
            "--classic-samples" => {
                o.classic_samples = num("--classic-samples", val("--classic-samples")?)?
            }
            "--burst" => o.burst = num("--burst", val("--burst")?)?,
            "--burst-reps" => o.burst_reps = num("--burst-reps", val("--burst-reps")?)?,
            "--links" => {
                o.links = val("--links")?
                    .split(',')
                    .map(|s| num("--links", s.trim().to_string()))
                    .collect::<Res<_>>()?;
                o.links.sort_unstable();
                o.links.dedup();
            }
            "--variant" => {
                let v = val("--variant")?;
                let (name, dir) = v
                    .split_once('=')
                    .ok_or(format!("--variant wants NAME=DIR, not {v}"))?;
                o.variants.push((name.to_string(), dir.into()));
            }
            "--bridge-helper" => {
                let v = val("--bridge-helper")?;
                let (name, path) = v
                    .split_once('=')
                    .ok_or(format!("--bridge-helper wants NAME=PATH, not {v}"))?;
                o.bridge_helpers.push(helper::Helper {
                    name: name.to_string(),
                    path: path.into(),
                });
            }
            "--helper-as" => {
                let v = val("--helper-as")?;
                let ids = v
                    .split_once(':')
                    .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
                    .ok_or(format!("--helper-as wants UID:GID, not {v}"))?;
                o.helper_as = Some(ids);
            }
            "--quick" => {
                o.rounds = 20;
                o.warmup = 3;
                o.links = vec![0, 4000];
                o.classic_samples = 2;
                o.burst_reps = 1;
            }
            other => return Err(format!("unknown argument {other} (see --help)").into()),
        }
    }
    if o.rounds == 0 || o.links.is_empty() {
        return Err("--rounds and --links must not be empty".into());
    }
    Ok(o)
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "--rss-probe") {
        std::process::exit(measure::rss_probe_main(&args[2..]));
    }
    if let Err(e) = run(&args[1..]) {
        eprintln!("ifup-bench: error: {e}");
        std::process::exit(1);
    }
}

/// The first `ip` on PATH, so that every candidate is started by absolute path.
fn find_ip() -> Res<PathBuf> {
    PATH.split(':')
        .map(|d| Path::new(d).join("ip"))
        .find(|p| p.is_file())
        .ok_or_else(|| "no `ip` found: install iproute2".into())
}

fn program_output(argv: &[&str]) -> String {
    Command::new(argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", PATH)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if s.is_empty() {
                s = String::from_utf8_lossy(&o.stderr).trim().to_string();
            }
            s
        })
        .unwrap_or_else(|e| format!("({e})"))
}

fn run(args: &[OsString]) -> Res<()> {
    let opts = parse_opts(args)?;
    if !nix::unistd::geteuid().is_root() {
        return Err(
            "must run as root: it creates a network namespace, bridges and taps \
                    (use `sudo scripts/bench.sh`)"
                .into(),
        );
    }
    if !opts.bridge_helpers.is_empty() {
        return run_bridge_helpers(&opts);
    }
    let ifup = opts.bin_dir.join("qemu-ifup");
    let ifdown = opts.bin_dir.join("qemu-ifdown");
    for b in [&ifup, &ifdown] {
        if !b.is_file() {
            return Err(format!(
                "{} not found: run `cargo build --release` first (scripts/bench.sh does)",
                b.display()
            )
            .into());
        }
    }
    let debian = Path::new("/etc/qemu-ifup");
    if !debian.is_file() {
        return Err("/etc/qemu-ifup not found: install qemu-system-common".into());
    }
    let ip = find_ip()?.display().to_string();
    let started = Instant::now();
    let load_start = report::loadavg();

    let mut sb = Sandbox::enter()?;
    eprintln!(
        "ifup-bench: in a private network namespace; syslog: {}",
        sb.syslog_note
    );

    // Without a config our helper picks the default-route bridge; if the host has a config file,
    // point it at an empty one, which qemu-ifup-rs(8) says is the same as none.
    let mut ifup_argv = vec![ifup.display().to_string()];
    let config_note = if Path::new(ifup_rs_config()).exists() {
        let empty = sb.scratch.join("empty.conf");
        std::fs::write(&empty, "")?;
        ifup_argv.extend(["--config".to_string(), empty.display().to_string()]);
        format!(
            "{} exists on this host, so qemu-ifup ran with `--config` pointing at an empty file \
             (same behaviour: the default-route bridge)",
            ifup_rs_config()
        )
    } else {
        "no config file: qemu-ifup picks the bridge of the default route".to_string()
    };
    ifup_argv.push("{tap}".into());

    let classic = sb.scratch.join("classic-ifup");
    std::fs::write(
        &classic,
        format!("#!/bin/sh\nip link set $1 up\nsleep 0.5s\nip link set $1 master {BRIDGE}\n"),
    )?;
    std::fs::set_permissions(&classic, std::fs::Permissions::from_mode(0o755))?;

    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut cands = vec![
        Candidate {
            key: "qemu-ifup",
            label: "`qemu-ifup TAP` (ours)".into(),
            argv: ifup_argv,
            more: Vec::new(),
            before: Some(State::Detached),
            after: Some(State::Attached),
            sparse: false,
        },
        Candidate {
            key: "ip-up",
            label: format!("`ip link set TAP master {BRIDGE} up`"),
            argv: s(&[&ip, "link", "set", "{tap}", "master", BRIDGE, "up"]),
            more: Vec::new(),
            before: Some(State::Detached),
            after: Some(State::Attached),
            sparse: false,
        },
        Candidate {
            key: "debian",
            label: "Debian's `/etc/qemu-ifup TAP`".into(),
            argv: s(&["/etc/qemu-ifup", "{tap}"]),
            more: Vec::new(),
            before: Some(State::Detached),
            after: Some(State::Attached),
            sparse: false,
        },
        Candidate {
            key: "classic",
            label: "classic script (`ip link set $1 up; sleep 0.5s; ip link set $1 master br0`)"
                .into(),
            argv: vec![classic.display().to_string(), "{tap}".into()],
            more: Vec::new(),
            before: Some(State::Detached),
            after: Some(State::Attached),
            sparse: true,
        },
        Candidate {
            key: "true",
            label: "`/bin/true` (process-spawn floor)".into(),
            argv: s(&["/bin/true"]),
            more: Vec::new(),
            before: None,
            after: None,
            sparse: false,
        },
        Candidate {
            key: "startup",
            label: "`qemu-ifup --version` (our start-up and exit alone)".into(),
            argv: vec![ifup.display().to_string(), "--version".into()],
            more: Vec::new(),
            before: None,
            after: None,
            sparse: false,
        },
        Candidate {
            key: "qemu-ifdown",
            label: "`qemu-ifdown TAP` (ours)".into(),
            argv: vec![ifdown.display().to_string(), "{tap}".into()],
            more: Vec::new(),
            before: Some(State::Attached),
            after: Some(State::Detached),
            sparse: false,
        },
        Candidate {
            key: "ip-down",
            label: "`ip link set TAP nomaster down`".into(),
            argv: s(&[&ip, "link", "set", "{tap}", "nomaster", "down"]),
            more: Vec::new(),
            before: Some(State::Attached),
            after: Some(State::Detached),
            sparse: false,
        },
    ];

    for (name, dir) in &opts.variants {
        for prog in ["qemu-ifup", "qemu-ifdown"] {
            let c = cands
                .iter()
                .find(|c| c.key == prog)
                .cloned()
                .expect("ours are candidates");
            let mut argv = c.argv.clone();
            argv[0] = dir.join(prog).display().to_string();
            // Candidate keys are 'static; a handful of variants per run is nothing to leak.
            let key: &'static str = Box::leak(format!("{name}/{prog}").into_boxed_str());
            let v = Candidate {
                key,
                label: format!("`{prog} TAP` ({name} build)"),
                argv,
                ..c
            };
            cands.push(v);
        }
    }

    // Routed taps and the bridge helpers, side by side with what they replace, while the
    // namespace has no other links.
    let routed = routed_candidates(&sb, &ifup.display().to_string(), &ip)?;
    let t = Instant::now();
    let routed_samples = measure::interleaved(&routed, opts.warmup, opts.rounds, 0)?;
    eprintln!(
        "ifup-bench: routed taps ({:.1} s): median µs: {}",
        t.elapsed().as_secs_f64(),
        medians(&routed, &routed_samples)
    );
    measure::reset_tap()?;
    let helpers = bridge_helper_runs(&sb, &opts, &ifup)?;

    // Peak RSS first, while the namespace is small.
    let mut rss = Vec::new();
    let fixed = [
        "true",
        "qemu-ifup",
        "qemu-ifdown",
        "ip-up",
        "ip-down",
        "debian",
    ];
    for c in &cands {
        if fixed.contains(&c.key) || c.key.contains('/') {
            rss.push((c.key, c.label.clone(), measure::peak_rss(c, 5)?));
        }
    }
    measure::reset_tap()?;

    let mut samples = Vec::new();
    for &links in &opts.links {
        sb.grow_fillers(links)?;
        let t = Instant::now();
        let per = measure::interleaved(&cands, opts.warmup, opts.rounds, opts.classic_samples)?;
        eprintln!(
            "ifup-bench: {links} other links ({:.1} s): median µs: {}",
            t.elapsed().as_secs_f64(),
            medians(&cands, &per)
        );
        samples.push((sb.fillers, per));
    }
    measure::reset_tap()?;

    measure::create_burst_taps(opts.burst)?;
    let burst_cands: Vec<&Candidate> = ["qemu-ifup", "ip-up", "debian"]
        .iter()
        .filter_map(|k| cands.iter().find(|c| c.key == *k))
        .collect();
    let bursts = measure::bursts(&burst_cands, opts.burst, opts.burst_reps)?;
    for b in &bursts {
        eprintln!(
            "ifup-bench: {} × {}: wall ms {:?}, failed {}, not attached {}",
            b.n, b.key, b.wall_ms, b.failed, b.not_attached
        );
    }

    let ifup_version = program_output(&[&ifup.display().to_string(), "--version"]);
    let results = Results {
        routed: routed.into_iter().zip(routed_samples).collect(),
        helpers,
        cands,
        samples,
        rounds: opts.rounds,
        warmup: opts.warmup,
        classic_samples: opts.classic_samples,
        bursts,
        burst_links: sb.fillers,
        rss,
        sizes: vec![
            ("qemu-ifup", std::fs::metadata(&ifup)?.len()),
            ("qemu-ifdown", std::fs::metadata(&ifdown)?.len()),
        ],
        helper_size: debian_bridge_helper()
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len()),
        machine: Machine {
            cpu: report::cpu_model(),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            date: report::utc_now(),
            load_start,
            load_end: report::loadavg(),
            ip_version: program_output(&[&ip, "-V"]),
            ifup_version,
        },
        syslog_note: sb.syslog_note.clone(),
        syslog_messages: sb.syslog_messages(),
        config_note,
        netfilter_note: sb.netfilter_note.clone(),
        seconds: started.elapsed().as_secs_f64(),
    };
    std::fs::create_dir_all(&opts.out)?;
    let md = opts.out.join("PERFORMANCE.md");
    let svg = opts.out.join("perf-links.svg");
    std::fs::write(&md, report::markdown(&results))?;
    std::fs::write(&svg, report::svg(&results))?;
    eprintln!(
        "ifup-bench: wrote {} and {} in {:.0} s",
        md.display(),
        svg.display(),
        results.seconds
    );
    drop(sb);
    Ok(())
}

/// `key median (cpu median)` of each candidate, for the progress lines.
fn medians(cands: &[Candidate], samples: &[measure::Samples]) -> String {
    cands
        .iter()
        .zip(samples)
        .map(|(c, xs)| {
            format!(
                "{} {:.0} (cpu {:.0})",
                c.key,
                measure::stat(&xs.wall).median,
                measure::stat(&xs.cpu).median
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `qemu-ifup` with a `tap TAP route …` rule (IPv4; IPv4 and IPv6), and the same done by hand
/// with `ip`: the tap up, then one `ip route add` per destination.
fn routed_candidates(sb: &Sandbox, ifup: &str, ip: &str) -> Res<Vec<Candidate>> {
    let mut out = Vec::new();
    for (key, v6) in [("v4", false), ("v4+v6", true)] {
        let dests = if v6 {
            format!("{ROUTE_V4},{ROUTE_V6}")
        } else {
            ROUTE_V4.to_owned()
        };
        let conf = sb.scratch.join(format!("routed-{key}.conf"));
        std::fs::write(&conf, format!("tap {TAP} route {dests}\n"))?;
        let by_hand = |argv: &[&str]| argv.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let mut more = vec![by_hand(&[ip, "route", "add", ROUTE_V4, "dev", "{tap}"])];
        if v6 {
            more.push(by_hand(&[
                ip, "-6", "route", "add", ROUTE_V6, "dev", "{tap}",
            ]));
        }
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        out.push(Candidate {
            key: leak(format!("routed-{key}")),
            label: format!("`qemu-ifup TAP` (ours), rule `tap TAP route {dests}`"),
            argv: vec![
                ifup.to_owned(),
                "--config".into(),
                conf.display().to_string(),
                "{tap}".into(),
            ],
            more: Vec::new(),
            before: Some(State::Detached),
            after: Some(State::Routed { v6 }),
            sparse: false,
        });
        let mut label = format!("`ip link set TAP up` + `ip route add {ROUTE_V4} dev TAP`");
        if v6 {
            label.push_str(&format!(" + `ip -6 route add {ROUTE_V6} dev TAP`"));
        }
        out.push(Candidate {
            key: leak(format!("ip-routed-{key}")),
            label,
            argv: by_hand(&[ip, "link", "set", "{tap}", "up"]),
            more,
            before: Some(State::Detached),
            after: Some(State::Routed { v6 }),
            sparse: false,
        });
    }
    Ok(out)
}

/// Debian's `qemu-bridge-helper`, where `qemu-system-common` put it (the `.distrib` name while
/// `qemu-ifup-rs-divert bridge-helper` makes ours QEMU's default).
fn debian_bridge_helper() -> Res<PathBuf> {
    let out = Command::new("dpkg-divert")
        .args(["--truename", DEBIAN_HELPER])
        .env_clear()
        .env("PATH", PATH)
        .output();
    let path = match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => PathBuf::from(DEBIAN_HELPER),
    };
    if !path.is_file() || path.is_symlink() {
        return Err(format!(
            "Debian's bridge helper {} not found: install qemu-system-common",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// One bridge-helper call each, Debian's and ours (and /bin/true), as root and then as
/// [`HELPER_USER`] running setuid-root copies; with an ACL allowing `br0` in a private `/etc`.
fn bridge_helper_runs(sb: &Sandbox, opts: &Opts, ifup: &Path) -> Res<Vec<HelperRun>> {
    let debian = debian_bridge_helper()?;
    sb.private_etc(&[("qemu/bridge.conf", &format!("allow {BRIDGE}\n"))])?;
    let suid = sb.scratch.join("setuid");
    let installs = [
        (
            "root",
            None,
            vec![
                ("Debian's `qemu-bridge-helper`", debian.clone()),
                ("`qemu-ifup` (ours)", ifup.to_owned()),
            ],
        ),
        (
            "setuid",
            Some(HELPER_USER),
            vec![
                (
                    "Debian's `qemu-bridge-helper`, setuid-root copy",
                    helper::setuid_copy(&debian, &suid, "qemu-bridge-helper")?,
                ),
                (
                    "`qemu-ifup` (ours), setuid-root copy",
                    helper::setuid_copy(ifup, &suid, "qemu-ifup")?,
                ),
            ],
        ),
    ];
    let mut runs = Vec::new();
    for (key, as_ids, helpers) in installs {
        let t = Instant::now();
        let hopts = helper::HelperOpts {
            helpers: helpers
                .iter()
                .map(|(name, path)| helper::Helper {
                    name: name.to_string(),
                    path: path.clone(),
                })
                .collect(),
            rounds: opts.rounds,
            warmup: opts.warmup,
            as_ids,
        };
        let samples = helper::measure(&hopts)?;
        let rows: Vec<(String, measure::Samples)> = hopts
            .helpers
            .iter()
            .map(|h| h.name.clone())
            .chain(["`/bin/true` (spawn floor)".to_owned()])
            .zip(samples)
            .collect();
        eprintln!(
            "ifup-bench: bridge helpers as {} ({:.1} s): median µs: {}",
            helper::who(as_ids),
            t.elapsed().as_secs_f64(),
            rows.iter()
                .map(|(n, xs)| format!("{n} {:.0}", measure::stat(&xs.wall).median))
                .collect::<Vec<_>>()
                .join(", ")
        );
        runs.push(HelperRun {
            key,
            who: helper::who(as_ids),
            rows,
        });
    }
    sb.end_private_etc()?;
    Ok(runs)
}

/// `--bridge-helper`: the bridge-helper measurement alone, printed to stdout.
fn run_bridge_helpers(opts: &Opts) -> Res<()> {
    for h in &opts.bridge_helpers {
        if !h.path.is_file() {
            return Err(format!("bridge helper {} not found", h.path.display()).into());
        }
    }
    let sb = Sandbox::enter()?;
    sb.private_etc(&[("qemu/bridge.conf", &format!("allow {BRIDGE}\n"))])?;
    let started = Instant::now();
    let hopts = helper::HelperOpts {
        helpers: opts.bridge_helpers.clone(),
        rounds: opts.rounds,
        warmup: opts.warmup,
        as_ids: opts.helper_as,
    };
    let samples = helper::measure(&hopts)?;
    print!("{}", helper::table(&hopts, &samples));
    eprintln!(
        "ifup-bench: {} helper rounds in {:.1} s; load average {}",
        opts.rounds,
        started.elapsed().as_secs_f64(),
        report::loadavg()
    );
    drop(sb);
    Ok(())
}

/// The helper's config file, as the helper's build sees it (`QEMU_IFUP_RS_CONFIG` moves it).
fn ifup_rs_config() -> &'static str {
    match option_env!("QEMU_IFUP_RS_CONFIG") {
        Some(p) => p,
        None => "/etc/qemu-ifup-rs.conf",
    }
}
