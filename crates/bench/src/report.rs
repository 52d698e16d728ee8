//! `docs/PERFORMANCE.md` and `docs/perf-links.svg` from the measurements.

use std::fmt::Write as _;

use crate::measure::{stat, Burst, Candidate, Samples, Stat};

/// Hand-written notes (profiles, what each optimisation bought), appended to the report.
const NOTES: &str = include_str!("../notes.md");

pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub date: String,
    pub load_start: String,
    pub load_end: String,
    pub ip_version: String,
    pub ifup_version: String,
}

/// One bridge-helper measurement: every helper and the floor, called as one user.
pub struct HelperRun {
    /// `root` or `setuid`.
    pub key: &'static str,
    /// Who made the calls, e.g. `uid 4242, gid 4242`.
    pub who: String,
    /// (label, samples): Debian's helper, ours, then `/bin/true`.
    pub rows: Vec<(String, Samples)>,
}

impl HelperRun {
    fn median(&self, i: usize) -> f64 {
        self.rows
            .get(i)
            .map_or(0.0, |(_, xs)| stat(&xs.wall).median)
    }

    /// Ours ÷ Debian's (rows 1 and 0), by median wall time.
    fn ratio(&self) -> f64 {
        self.median(1) / self.median(0)
    }
}

pub struct Results {
    /// Routed taps: ours and the same by hand, alternating (`routed-…`, `ip-routed-…`).
    pub routed: Vec<(Candidate, Samples)>,
    pub helpers: Vec<HelperRun>,
    pub cands: Vec<Candidate>,
    /// (other links in the namespace, per-call samples of each candidate)
    pub samples: Vec<(usize, Vec<Samples>)>,
    pub rounds: usize,
    pub warmup: usize,
    pub classic_samples: usize,
    pub bursts: Vec<Burst>,
    pub burst_links: usize,
    /// (key, label, peak RSS KiB)
    pub rss: Vec<(&'static str, String, u64)>,
    pub sizes: Vec<(&'static str, u64)>,
    pub helper_size: Option<u64>,
    pub machine: Machine,
    pub syslog_note: String,
    pub syslog_messages: Option<usize>,
    pub config_note: String,
    pub netfilter_note: Option<String>,
    pub seconds: f64,
}

impl Results {
    fn idx(&self, key: &str) -> usize {
        self.cands.iter().position(|c| c.key == key).unwrap_or(0)
    }

    /// Wall time.
    fn stat_at(&self, point: usize, key: &str) -> Stat {
        stat(&self.samples[point].1[self.idx(key)].wall)
    }

    fn cpu_at(&self, point: usize, key: &str) -> Stat {
        stat(&self.samples[point].1[self.idx(key)].cpu)
    }

    /// Which of ours a candidate is compared with.
    fn ours_for(key: &str) -> &'static str {
        if key == "ip-down" || key.ends_with("qemu-ifdown") {
            "qemu-ifdown"
        } else {
            "qemu-ifup"
        }
    }
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn fmt_us(us: f64) -> String {
    if us >= 100_000.0 {
        format!("{:.0} ms", us / 1e3)
    } else if us >= 10_000.0 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{} µs", thousands(us.round() as u64))
    }
}

/// The cells ` median | p90 | ratio | CPU |` of a timing table: `wall` of the row, the median
/// CPU time, and the ratio to `ours` (a median).
fn timing_cells(wall: Stat, cpu_median: f64, ours: f64) -> String {
    format!(
        " {} | {} | {} | {} |",
        fmt_us(wall.median),
        fmt_us(wall.p90),
        fmt_ratio(wall.median / ours),
        fmt_us(cpu_median)
    )
}

fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "**yes**"
    } else {
        "**NO**"
    }
}

fn links_label(n: usize) -> String {
    if n == 0 {
        "no other links".into()
    } else {
        format!("{} other links", thousands(n as u64))
    }
}

/// One target: its text, the measured value at each headline point, and whether it holds.
struct Target {
    what: String,
    measured: String,
    met: bool,
}

fn targets(r: &Results) -> Vec<Target> {
    let first = 0;
    let last = r.samples.len() - 1;
    let heads: Vec<usize> = if last == first {
        vec![first]
    } else {
        vec![first, last]
    };
    let mut t = Vec::new();
    let mut ratio_target = |what: &str, num: &str, den: &str, limit: f64, at_most: bool| {
        let mut parts = Vec::new();
        let mut met = true;
        for &p in &heads {
            let x = r.stat_at(p, num).median / r.stat_at(p, den).median;
            met &= if at_most { x <= limit } else { x >= limit };
            // Three decimals where two would round onto the limit and hide which side it is on.
            let shown = if fmt_ratio(x) == fmt_ratio(limit) && x != limit {
                format!("{x:.3}×")
            } else {
                fmt_ratio(x)
            };
            parts.push(format!("{shown} ({})", links_label(r.samples[p].0)));
        }
        t.push(Target {
            what: what.into(),
            measured: parts.join(", "),
            met,
        });
    };
    ratio_target(
        "`qemu-ifup` ≤ 0.9 × `ip link set … master … up`",
        "qemu-ifup",
        "ip-up",
        0.9,
        true,
    );
    ratio_target(
        "`qemu-ifdown` ≤ 0.9 × `ip link set … nomaster down`",
        "qemu-ifdown",
        "ip-down",
        0.9,
        true,
    );
    ratio_target(
        "Debian's `/etc/qemu-ifup` ≥ 5 × `qemu-ifup`",
        "debian",
        "qemu-ifup",
        5.0,
        false,
    );
    ratio_target(
        "`qemu-ifup` ≤ 2.0 × the spawn floor (`/bin/true`)",
        "qemu-ifup",
        "true",
        2.0,
        true,
    );
    for key in ["qemu-ifup", "qemu-ifdown"] {
        let a = r.stat_at(first, key).median;
        let b = r.stat_at(last, key).median;
        let x = b / a;
        t.push(Target {
            what: format!(
                "`{key}` at {} ≤ 1.15 × at {}",
                links_label(r.samples[last].0),
                links_label(r.samples[first].0)
            ),
            measured: format!("{} ({} → {})", fmt_ratio(x), fmt_us(a), fmt_us(b)),
            met: x <= 1.15,
        });
    }
    for pair in r.routed.chunks(2) {
        if let [(ours, o), (_, h)] = pair {
            let (o, h) = (stat(&o.wall).median, stat(&h.wall).median);
            t.push(Target {
                what: format!(
                    "routed `qemu-ifup` ({}) ≤ 1.0 × the same by hand with `ip`",
                    ours.key.trim_start_matches("routed-")
                ),
                measured: format!("{} ({} vs {})", fmt_ratio(o / h), fmt_us(o), fmt_us(h)),
                met: o <= h,
            });
        }
    }
    for run in &r.helpers {
        t.push(Target {
            what: format!(
                "bridge-helper call: ours ≤ 1.0 × Debian's `qemu-bridge-helper` ({})",
                if run.key == "root" {
                    "as root".to_owned()
                } else {
                    format!("setuid-root copies run by {}", run.who)
                }
            ),
            measured: format!(
                "{} ({} vs {})",
                fmt_ratio(run.ratio()),
                fmt_us(run.median(1)),
                fmt_us(run.median(0))
            ),
            met: run.ratio() <= 1.0,
        });
    }
    if let Some(b) = r.bursts.iter().find(|b| b.key == "qemu-ifup") {
        t.push(Target {
            what: format!(
                "{} concurrent `qemu-ifup` calls on one bridge: all succeed",
                b.n
            ),
            measured: format!(
                "{} runs × {}: {} failed, {} not attached",
                b.wall_ms.len(),
                b.n,
                b.failed,
                b.not_attached
            ),
            met: b.failed == 0 && b.not_attached == 0 && !b.wall_ms.is_empty(),
        });
    }
    for (name, size) in &r.sizes {
        t.push(Target {
            what: format!("stripped `{name}` ≤ 600 KiB"),
            measured: format!("{} KiB ({} bytes)", size / 1024, thousands(*size)),
            met: *size <= 600 * 1024,
        });
    }
    for (key, _, kib) in &r.rss {
        if matches!(*key, "qemu-ifup" | "qemu-ifdown") {
            t.push(Target {
                what: format!("one `{key}` call peaks at ≤ 3 MiB RSS"),
                measured: format!("{} KiB", thousands(*kib)),
                met: *kib <= 3 * 1024,
            });
        }
    }
    t
}

pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let first = 0;
    let last = r.samples.len() - 1;
    let _ = writeln!(s, "# Performance\n");
    let _ = writeln!(
        s,
        "Generated by `sudo scripts/bench.sh` (the `ifup-bench` crate in `crates/bench`); do not \
         edit by hand — the notes at the end come from `crates/bench/notes.md`. Absolute times \
         depend on the machine; the targets are ratios measured side by side in one run.\n"
    );
    let _ = writeln!(
        s,
        "Reproduce (as root, on Debian): `sudo scripts/bench.sh`\n"
    );

    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(s, "| | |\n| --- | --- |");
    let _ = writeln!(s, "| CPU | {} |", m.cpu);
    let _ = writeln!(s, "| cores | {} |", m.cores);
    let _ = writeln!(s, "| kernel | {} |", m.kernel);
    let _ = writeln!(s, "| date | {} |", m.date);
    let _ = writeln!(
        s,
        "| load average (1, 5, 15 min) at start / end | {} / {} |",
        m.load_start, m.load_end
    );
    let _ = writeln!(s, "| iproute2 | {} |", m.ip_version);
    let _ = writeln!(s, "| helper | {} |", m.ifup_version);
    let _ = writeln!(s, "| run time | {:.0} s |\n", r.seconds);

    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(s, "| target | measured | met |\n| --- | --- | --- |");
    for t in targets(r) {
        let _ = writeln!(s, "| {} | {} | {} |", t.what, t.measured, yes(t.met));
    }
    let _ = writeln!(s);

    let _ = writeln!(s, "## Per call\n");
    let _ = writeln!(
        s,
        "Whole-process wall time of one call, spawn to reaped, median and 90th percentile of {} \
         interleaved rounds ({} classic-script samples) after {} warm-up rounds. \"ratio\" is the \
         figure ÷ ours for the same operation (`qemu-ifdown` for the two detaching commands, \
         `qemu-ifup` for the rest). \"CPU\" is the median user + system time of the process and \
         everything it ran (from `getrusage(RUSAGE_CHILDREN)` around the call): unlike wall time \
         it does not grow while the process waits for a busy CPU.\n",
        r.rounds, r.classic_samples, r.warmup
    );
    let heads: Vec<usize> = if last == first {
        vec![first]
    } else {
        vec![first, last]
    };
    let mut header = "| command |".to_string();
    let mut rule = "| --- |".to_string();
    for &p in &heads {
        let l = links_label(r.samples[p].0);
        let _ = write!(header, " {l}: median | p90 | ratio | CPU |");
        rule.push_str(" ---: | ---: | ---: | ---: |");
    }
    let _ = writeln!(s, "{header}\n{rule}");
    for c in &r.cands {
        let mut row = format!("| {} |", c.label);
        for &p in &heads {
            let ours = r.stat_at(p, Results::ours_for(c.key)).median;
            row.push_str(&timing_cells(
                r.stat_at(p, c.key),
                r.cpu_at(p, c.key).median,
                ours,
            ));
        }
        let _ = writeln!(s, "{row}");
    }
    let _ = writeln!(s);

    let _ = writeln!(s, "## Per call vs number of links\n");
    let _ = writeln!(
        s,
        "![per-call median vs number of other links](perf-links.svg)\n\nMedian per call; the \
         other links are veth pairs (down, no addresses), created with `ip -batch`.\n"
    );
    let mut header = "| other links |".to_string();
    let mut rule = "| ---: |".to_string();
    for c in &r.cands {
        let _ = write!(header, " {} |", c.key);
        rule.push_str(" ---: |");
    }
    let _ = writeln!(s, "{header}\n{rule}");
    for (p, (links, _)) in r.samples.iter().enumerate() {
        let mut row = format!("| {} |", thousands(*links as u64));
        for c in &r.cands {
            let _ = write!(row, " {} |", fmt_us(r.stat_at(p, c.key).median));
        }
        let _ = writeln!(s, "{row}");
    }
    let _ = writeln!(s);

    if !r.bursts.is_empty() {
        let n = r.bursts[0].n;
        let _ = writeln!(s, "## {n} concurrent calls on one bridge\n");
        let _ = writeln!(
            s,
            "{n} taps, all detached, then {n} calls spawned at once, each attaching its own tap to \
             `br0`; wall time from the first spawn to the last reaped, with {} other links in the \
             namespace. Each call's exit status and each tap's master and up flag (read from \
             sysfs) are checked.\n",
            thousands(r.burst_links as u64)
        );
        let _ = writeln!(
            s,
            "| command | wall time (median of {}) | wall time ÷ calls | failed | exited 0 but not attached |\n| --- | ---: | ---: | ---: | ---: |",
            r.bursts[0].wall_ms.len()
        );
        for b in &r.bursts {
            let st = stat(&b.wall_ms);
            let _ = writeln!(
                s,
                "| {} | {:.0} ms | {} | {} | {} |",
                b.label,
                st.median,
                fmt_us(st.median * 1e3 / b.n as f64),
                b.failed,
                b.not_attached
            );
        }
        for b in &r.bursts {
            if let Some(e) = &b.first_error {
                let _ = writeln!(s, "\nFirst failure of {}: `{e}`", b.key);
            }
        }
        let _ = writeln!(s);
    }

    if !r.routed.is_empty() {
        let _ = writeln!(s, "## Routed taps\n");
        let _ = writeln!(
            s,
            "`qemu-ifup TAP` with a rule `tap TAP route LIST` (one `RTM_SETLINK` for the MAC and \
             up, then one `RTM_NEWROUTE` per destination, after checking that no other device \
             routes it), against the same done by hand: `ip link set TAP up`, then one `ip route \
             add DEST dev TAP` per destination, each program timed from spawn to reaped, one \
             after the other. {} interleaved rounds after {} warm-up rounds, with no other links; \
             before each call the tap is down without routes (taking a link down drops its \
             routes), and after it the tap's up flag and routes are read back from \
             `/proc/net/route` and `/proc/net/ipv6_route`. Forwarding is on in the benchmark's \
             namespace (`net.ipv4.ip_forward`, `net.ipv6.conf.all.forwarding`), as on a host \
             with routed guests; qemu-ifup would warn on every call otherwise.\n",
            r.rounds, r.warmup
        );
        let _ = writeln!(
            s,
            "| command | median | p90 | ratio | CPU |\n| --- | ---: | ---: | ---: | ---: |"
        );
        for pair in r.routed.chunks(2) {
            let ours = pair.first().map_or(0.0, |(_, xs)| stat(&xs.wall).median);
            for (c, xs) in pair {
                let cells = timing_cells(stat(&xs.wall), stat(&xs.cpu).median, ours);
                let _ = writeln!(s, "| {} |{cells}", c.label);
            }
        }
        let _ = writeln!(s);
    }

    if !r.helpers.is_empty() {
        let _ = writeln!(s, "## Bridge-helper calls\n");
        let _ = writeln!(
            s,
            "One call as QEMU makes it for `-netdev bridge` (`HELPER --use-vnet --fd={} \
             --br=br0`): socket pair, spawn with one end as descriptor {}, receive the tap's \
             descriptor, reap; timed from before the socket pair to after the reap. Each call is \
             checked (exit 0, one descriptor, a tap up on `br0`); closing the descriptor \
             afterwards (untimed) removes the tap. The ACL `/etc/qemu/bridge.conf` (`allow br0`, \
             in a private overlay on `/etc`) is read by both helpers. Run as root, then as an \
             unprivileged uid running setuid-root copies of both helpers (on the benchmark's \
             tmpfs), as a user's QEMU runs them; `/bin/true` is spawned and reaped the same way \
             (with the socket as descriptor {}, so that it is forked as the helpers are: the \
             floor of this harness, above the `/bin/true` of the per-call table, which std starts \
             with `posix_spawn`). \
             {} interleaved rounds after {} warm-up rounds, with no other links. \"ratio\" is \
             the figure ÷ ours.\n",
            crate::helper::FD,
            crate::helper::FD,
            crate::helper::FD,
            r.rounds,
            r.warmup
        );
        let _ = writeln!(
            s,
            "| run as | helper | median | p90 | ratio | CPU |\n| --- | --- | ---: | ---: | ---: | ---: |"
        );
        for run in &r.helpers {
            let ours = run.median(1);
            for (label, xs) in &run.rows {
                let cells = timing_cells(stat(&xs.wall), stat(&xs.cpu).median, ours);
                let _ = writeln!(s, "| {} | {label} |{cells}", run.who);
            }
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "## Size and memory\n");
    let _ = writeln!(
        s,
        "| binary (release profile, stripped) | bytes | KiB |\n| --- | ---: | ---: |"
    );
    for (name, size) in &r.sizes {
        let _ = writeln!(
            s,
            "| `target/release/{name}` | {} | {} |",
            thousands(*size),
            size / 1024
        );
    }
    if let Some(h) = r.helper_size {
        let _ = writeln!(
            s,
            "| Debian's `/usr/lib/qemu/qemu-bridge-helper` (C, for comparison) | {} | {} |",
            thousands(h),
            h / 1024
        );
    }
    let _ = writeln!(
        s,
        "\nPeak RSS of one call: `ru_maxrss` of `getrusage(RUSAGE_CHILDREN)` in a fresh probe \
         process that waits for exactly that one child (largest of 5). Linux keeps the \
         high-water mark across exec, so a child also counts what it shared with its parent \
         before exec: the probe forks (not vfork), which hands over only its few anonymous \
         pages, and `/bin/true` measured the same way shows the floor of the method.\n"
    );
    let _ = writeln!(s, "| command | peak RSS |\n| --- | ---: |");
    for (_, label, kib) in &r.rss {
        let _ = writeln!(s, "| {label} | {} KiB |", thousands(*kib));
    }
    let _ = writeln!(s);

    let _ = writeln!(s, "## How it is measured\n");
    let _ = writeln!(
        s,
        "- The benchmark unshares its own network and mount namespaces, mounts a sysfs of that \
         network namespace (Debian's script reads `/sys/class/net/BR/bridge`), and builds `br0` \
         (address 192.0.2.1/24, default route via 192.0.2.254, a MAC set by the admin as \
         qemu-ifup recommends: it warns about a bridge whose MAC follows its ports) and a \
         persistent tap `tap0`."
    );
    let _ = writeln!(
        s,
        "- Before every timed call the tap is put, untimed, into the state the call starts from \
         (detached, down, MAC 52:54:00:… as fresh from QEMU; or attached and up), so each sample \
         is exactly one call doing the whole job. After every call the tap's master and up flag \
         are read back from sysfs; a call that exits 0 without doing the job stops the run."
    );
    let _ = writeln!(
        s,
        "- Every program gets a clean environment (`PATH` only) and `/dev/null` for stdin, \
         stdout and stderr; each round runs every candidate once, in an order rotated each round."
    );
    let _ = writeln!(s, "- Config: {}.", r.config_note);
    if let Some(n) = &r.netfilter_note {
        let _ = writeln!(s, "- Netfilter: {n}.");
    }
    let mut syslog = format!("- Syslog: {}", r.syslog_note);
    if let Some(n) = r.syslog_messages {
        let _ = write!(
            syslog,
            "; {} messages received during the run",
            thousands(n as u64)
        );
    }
    let _ = writeln!(s, "{syslog}.");
    let _ = writeln!(
        s,
        "- Debian's `/etc/qemu-ifdown` does nothing (`:`), so it has no row; the classic script \
         is taken from the QEMU/KVM networking guides.\n"
    );

    s.push_str(NOTES);
    if !NOTES.ends_with('\n') {
        s.push('\n');
    }
    s
}

const COLORS: &[(&str, &str, bool)] = &[
    ("qemu-ifup", "#d62728", false),
    ("qemu-ifdown", "#ff7f0e", false),
    ("ip-up", "#1f77b4", false),
    ("ip-down", "#17becf", false),
    ("debian", "#2ca02c", false),
    ("classic", "#9467bd", false),
    ("true", "#7f7f7f", true),
    ("startup", "#e377c2", true),
];

/// A hand-written line plot: per-call median (log scale) vs other links in the namespace.
pub fn svg(r: &Results) -> String {
    let (w, h) = (840.0, 500.0);
    let (left, right, top, bottom) = (80.0, 300.0, 40.0, 60.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let xs: Vec<f64> = r.samples.iter().map(|(l, _)| *l as f64).collect();
    let xmax = xs.iter().copied().fold(1.0, f64::max);
    let mut lo = f64::INFINITY;
    let mut hi: f64 = 0.0;
    // The classic script (0.5 s of sleep) would squash everything else: it is listed, not drawn.
    for p in 0..r.samples.len() {
        for c in r.cands.iter().filter(|c| !c.sparse) {
            let m = r.stat_at(p, c.key).median;
            if m > 0.0 {
                lo = lo.min(m);
                hi = hi.max(m);
            }
        }
    }
    if !lo.is_finite() {
        lo = 1.0;
        hi = 10.0;
    }
    // Snap the range outwards to 1-2-5 steps.
    let steps = |k: f64| [1.0, 2.0, 5.0, 10.0].map(|m| (m * 10f64.powf(k)).log10());
    let llo = steps(lo.log10().floor())
        .into_iter()
        .filter(|l| *l <= lo.log10() + 1e-9)
        .fold(lo.log10().floor(), f64::max);
    let lhi = steps(hi.log10().floor())
        .into_iter()
        .find(|l| *l >= hi.log10() - 1e-9)
        .unwrap_or(hi.log10().ceil())
        .max(llo + 0.3);
    let x_of = |x: f64| left + pw * x / xmax;
    let y_of = |us: f64| top + ph * (1.0 - (us.log10() - llo) / (lhi - llo));

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">Per-call time (median) vs other links in the namespace</text>"#,
        left + pw / 2.0
    );
    // Y grid: 1, 2, 5 × 10^k.
    let mut k = llo.floor();
    while k < lhi + 0.5 {
        for mult in [1.0, 2.0, 5.0] {
            let v = mult * 10f64.powf(k);
            if v.log10() > lhi + 1e-9 || v.log10() < llo - 1e-9 {
                continue;
            }
            let y = y_of(v);
            let stroke = if mult == 1.0 { "#bbb" } else { "#e4e4e4" };
            let _ = writeln!(
                s,
                r#"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{stroke}"/>"#,
                left + pw
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                left - 6.0,
                y + 4.0,
                tick_label(v)
            );
        }
        k += 1.0;
    }
    // X ticks at the measured points.
    for &x in &xs {
        let px = x_of(x);
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{:.1}" stroke="#eee"/>"##,
            top + ph
        );
        let _ = writeln!(
            s,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            top + ph + 18.0,
            thousands(x as u64)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">other links in the network namespace</text>"#,
        left + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">time per call (log scale)</text>"#,
        top + ph / 2.0
    );
    // Series and legend.
    let mut ly = top + 10.0;
    for c in &r.cands {
        let (color, dashed) = COLORS
            .iter()
            .find(|(k, _, _)| *k == c.key)
            .map_or(("#000", false), |(_, col, d)| (*col, *d));
        let width = if c.key.starts_with("qemu-") { 3 } else { 2 };
        let dash = if dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        if !c.sparse {
            let pts: Vec<(f64, f64)> = (0..r.samples.len())
                .map(|p| (x_of(xs[p]), y_of(r.stat_at(p, c.key).median)))
                .collect();
            let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{width}"{dash}/>"#,
                path.join(" ")
            );
            // Squares for detaching, circles for the rest, so overlapping lines stay apart.
            for (x, y) in &pts {
                let _ = if c.key.ends_with("down") {
                    writeln!(
                        s,
                        r#"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{color}"/>"#,
                        x - 3.5,
                        y - 3.5
                    )
                } else {
                    writeln!(
                        s,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{color}"/>"#
                    )
                };
            }
        }
        let lx = left + pw + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="{width}"{dash}/>"#,
            lx + 24.0
        );
        let last = r.stat_at(r.samples.len() - 1, c.key).median;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">{} ({}{})</text>"#,
            lx + 30.0,
            ly + 4.0,
            legend_name(c.key),
            fmt_us(last),
            if c.sparse { ", off scale" } else { "" }
        );
        ly += 20.0;
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" fill="#555">(value at {} other links)</text>"##,
        left + pw + 16.0,
        ly + 4.0,
        thousands(xmax as u64)
    );
    s.push_str("</svg>\n");
    s
}

fn legend_name(key: &str) -> &str {
    match key {
        "qemu-ifup" => "qemu-ifup (ours)",
        "qemu-ifdown" => "qemu-ifdown (ours)",
        "ip-up" => "ip link set master up",
        "ip-down" => "ip link set nomaster down",
        "debian" => "Debian /etc/qemu-ifup",
        "classic" => "classic script",
        "true" => "/bin/true (spawn floor)",
        "startup" => "qemu-ifup --version",
        other => other,
    }
}

fn tick_label(us: f64) -> String {
    if us >= 1e6 {
        format!("{} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{} ms", us / 1e3)
    } else {
        format!("{us} µs")
    }
}
