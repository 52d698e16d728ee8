//! Setuid-root and file-capability copies of the binaries under test, and running them the way an
//! unprivileged user would: as another uid/gid with chosen supplementary groups, with a private
//! `/etc` (a prepared directory bind-mounted over `/etc` in a mount namespace of its own), in the
//! calling thread's network namespace.
//!
//! The helpers under test read fixed paths (`/etc/qemu-ifup-rs.conf`, `/etc/qemu/bridge.conf`) in
//! privileged mode. Tests run in parallel and must not write the machine's `/etc`, so each run
//! happens in `unshare --mount --propagation private`, where [`PrivateEtc`] is bound over `/etc`;
//! nothing leaks back to the host's mount table. Without `/etc/ld.so.cache` the dynamic loader
//! falls back to its built-in directories, which is enough for `setpriv`, the helpers and QEMU on
//! Debian.
//!
//! Copies are made by `install(1)` in a child process, never through a descriptor of the test
//! process: a write descriptor inherited by a child forked from another test thread would make
//! the exec of the fresh copy fail with `ETXTBSY`.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Debug;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use nix::sys::statvfs::{statvfs, FsFlags};

use crate::{output_of, require_root, tool, RunOutput, CLEAN_PATH};

/// How a copy of a binary gains privilege on exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Install {
    /// Owned by root, mode 4755.
    SetuidRoot,
    /// Owned by root, mode 0755, `setcap cap_net_admin+ep`.
    FileCaps,
    /// Owned by root, mode 0755, `setcap cap_net_admin,cap_dac_read_search+ep`: can also read
    /// files the caller cannot (until it drops to `CAP_NET_ADMIN` alone).
    FileCapsReadSearch,
    /// Owned by root, mode 0755, no capabilities: gains nothing.
    Plain,
}

impl Install {
    fn dir_name(self) -> &'static str {
        match self {
            Install::SetuidRoot => "setuid",
            Install::FileCaps => "fcaps",
            Install::FileCapsReadSearch => "fcaps-read-search",
            Install::Plain => "plain",
        }
    }

    fn mode(self) -> &'static str {
        match self {
            Install::SetuidRoot => "4755",
            Install::FileCaps | Install::FileCapsReadSearch | Install::Plain => "0755",
        }
    }
}

/// Panics unless this process can make and run setuid copies: root, no no-new-privileges (under
/// which setuid and file capabilities do nothing), and the tools the fixtures use.
pub fn require_setuid_capable() {
    require_root();
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let nnp = status
        .lines()
        .find_map(|l| l.strip_prefix("NoNewPrivs:"))
        .map(str::trim);
    assert_eq!(
        nnp,
        Some("0"),
        "the test runner has no-new-privileges set, so setuid and file capabilities cannot take \
         effect: run the tests outside such a sandbox"
    );
    for (name, package) in [
        ("unshare", "util-linux"),
        ("setpriv", "util-linux"),
        ("mount", "mount"),
        ("install", "coreutils"),
        ("setcap", "libcap2-bin"),
    ] {
        tool(name, package);
    }
}

/// Why `dir` cannot hold a setuid binary that another uid runs, if it cannot.
pub fn unsuitable_for_setuid(dir: &Path) -> Option<String> {
    let vfs = match statvfs(dir) {
        Ok(vfs) => vfs,
        Err(e) => return Some(format!("statvfs: {e}")),
    };
    if vfs.flags().contains(FsFlags::ST_NOSUID) {
        return Some("mounted nosuid".to_owned());
    }
    if vfs.flags().contains(FsFlags::ST_NOEXEC) {
        return Some("mounted noexec".to_owned());
    }
    for ancestor in dir.ancestors() {
        let mode = std::fs::metadata(ancestor).map(|m| m.mode()).unwrap_or(0);
        if mode & 0o001 == 0 {
            return Some(format!(
                "{} is not searchable by others",
                ancestor.display()
            ));
        }
    }
    None
}

/// A directory that can hold setuid copies and files other users must reach: `preferred` (e.g.
/// the test's `CARGO_TARGET_TMPDIR`) if it is suitable ([`unsuitable_for_setuid`]), else
/// `/var/tmp/qemu-ifup-rs-tests` (a checkout under a 0700 home directory is not reachable by the
/// test users). Panics, naming every reason, if neither is suitable.
pub fn suitable_base(preferred: &Path) -> PathBuf {
    let Some(why) = unsuitable_for_setuid(preferred) else {
        return preferred.to_owned();
    };
    let fallback = Path::new("/var/tmp/qemu-ifup-rs-tests");
    if std::fs::create_dir_all(fallback).is_ok() {
        let _ = std::os::unix::fs::lchown(fallback, Some(0), Some(0));
        let _ = std::fs::set_permissions(fallback, std::fs::Permissions::from_mode(0o755));
    }
    match unsuitable_for_setuid(fallback) {
        None => fallback.to_owned(),
        Some(why2) => panic!(
            "no directory can hold setuid test binaries: {}: {why}; {}: {why2}",
            preferred.display(),
            fallback.display()
        ),
    }
}

/// Copies made by this process: (source, how) → copy.
static COPIES: Mutex<Option<HashMap<(PathBuf, Install), PathBuf>>> = Mutex::new(None);

/// A copy of `bin`, installed `how`, in a directory of this process under
/// [`suitable_base`]`(base)` (`base` e.g. the test's `CARGO_TARGET_TMPDIR`). Made once per
/// process and reused; directories left by earlier test processes that no longer run are removed
/// on first use.
pub fn install_copy(base: &Path, bin: &Path, how: Install) -> PathBuf {
    require_setuid_capable();
    let base = &suitable_base(base);
    let mut copies = COPIES.lock().unwrap_or_else(|e| e.into_inner());
    let copies = copies.get_or_insert_with(|| {
        remove_stale_copies(base);
        HashMap::new()
    });
    if let Some(path) = copies.get(&(bin.to_owned(), how)) {
        return path.clone();
    }
    let dir = base
        .join(format!("{COPIES_PREFIX}{}", std::process::id()))
        .join(how.dir_name());
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    for d in [dir.as_path(), dir.parent().unwrap_or(&dir)] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let name = bin
        .file_name()
        .unwrap_or_else(|| panic!("{} has no file name", bin.display()));
    let path = dir.join(name);
    // install(1) chowns before it chmods, so the setuid bit survives.
    run_tool(
        Command::new("install")
            .args(["-o", "root", "-g", "root", "-m", how.mode()])
            .arg(bin)
            .arg(&path),
    );
    let caps = match how {
        Install::FileCaps => Some("cap_net_admin+ep"),
        Install::FileCapsReadSearch => Some("cap_net_admin,cap_dac_read_search+ep"),
        Install::SetuidRoot | Install::Plain => None,
    };
    if let Some(caps) = caps {
        run_tool(Command::new("setcap").arg(caps).arg(&path));
    }
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.uid(), 0, "{}", path.display());
    let want_mode = u32::from_str_radix(how.mode(), 8).unwrap();
    assert_eq!(meta.mode() & 0o7777, want_mode, "{}", path.display());
    copies.insert((bin.to_owned(), how), path.clone());
    path
}

const COPIES_PREFIX: &str = "privileged-copies-";

/// Removes `base/privileged-copies-PID` directories whose process is gone.
fn remove_stale_copies(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(COPIES_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn run_tool(cmd: &mut Command) {
    cmd.env_clear().env("PATH", CLEAN_PATH);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Who runs the binary: real (and effective) uid and gid, and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Caller {
    /// `uid`, primary group `gid`, no supplementary groups.
    pub fn new(uid: u32, gid: u32) -> Caller {
        Caller {
            uid,
            gid,
            groups: Vec::new(),
        }
    }

    /// The same caller with these supplementary groups.
    pub fn with_groups(mut self, groups: &[u32]) -> Caller {
        self.groups = groups.to_vec();
        self
    }

    /// The words that run a command (the words after them) as this caller, started as root:
    /// `setpriv --reuid=UID --regid=GID --groups=G,…|--clear-groups --inh-caps=-all --`.
    pub fn setpriv_args(&self) -> Vec<String> {
        let groups = if self.groups.is_empty() {
            "--clear-groups".to_owned()
        } else {
            let groups: Vec<String> = self.groups.iter().map(u32::to_string).collect();
            format!("--groups={}", groups.join(","))
        };
        vec![
            "setpriv".to_owned(),
            format!("--reuid={}", self.uid),
            format!("--regid={}", self.gid),
            groups,
            "--inh-caps=-all".to_owned(),
            "--".to_owned(),
        ]
    }
}

/// A directory to bind over `/etc` for one test, owned by root, mode 0755, with an (empty) `qemu`
/// subdirectory owned by root, mode 0755. Removed on drop.
pub struct PrivateEtc {
    dir: PathBuf,
}

impl PrivateEtc {
    /// `base/etc-NAME-PID` (`NAME` unique per test), fresh.
    pub fn new(base: &Path, name: &str) -> PrivateEtc {
        require_root();
        let dir = base.join(format!("etc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("qemu"))
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let etc = PrivateEtc { dir };
        etc.set_meta("", 0, 0, 0o755);
        etc.set_meta("qemu", 0, 0, 0o755);
        etc
    }

    /// A syslog listener that the runs see as `/dev/log` (the directory `PATH.dev` is bound
    /// over `/dev` in their mount namespace; nothing else of `/dev` is needed there).
    pub fn syslog(&self) -> SyslogListener {
        let mut dev = self.dir.clone().into_os_string();
        dev.push(".dev");
        let dev = PathBuf::from(dev);
        let _ = std::fs::remove_dir_all(&dev);
        std::fs::create_dir_all(&dev).unwrap_or_else(|e| panic!("mkdir {}: {e}", dev.display()));
        let path = dev.join("log");
        let sock = std::os::unix::net::UnixDatagram::bind(&path)
            .unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        // Any caller may log, as with the real /dev/log.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        SyslogListener { sock, dev }
    }

    /// The directory that becomes `/etc`.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The real path of `rel` (e.g. `qemu/bridge.conf`) inside the directory.
    pub fn host_path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(rel)
        }
    }

    /// Writes `text` to `rel`, owned by root:root, mode 0644.
    pub fn write(&self, rel: &str, text: &str) -> &PrivateEtc {
        self.write_as(rel, text, 0, 0, 0o644)
    }

    /// Writes `text` to `rel` (replacing any file or symlink there), then sets its owner and mode.
    pub fn write_as(&self, rel: &str, text: &str, uid: u32, gid: u32, mode: u32) -> &PrivateEtc {
        let path = self.host_path(rel);
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self.set_meta(rel, uid, gid, mode);
        self
    }

    /// Sets owner and mode of `rel` (`""` for the directory itself); the chmod comes after the
    /// chown.
    pub fn set_meta(&self, rel: &str, uid: u32, gid: u32, mode: u32) -> &PrivateEtc {
        let path = self.host_path(rel);
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        self
    }

    /// Makes `rel` a symbolic link to `target` (replacing any file there).
    pub fn symlink(&self, rel: &str, target: &str) -> &PrivateEtc {
        let path = self.host_path(rel);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(target, &path)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", path.display()));
        self
    }

    /// Removes the file `rel` if it exists.
    pub fn remove(&self, rel: &str) -> &PrivateEtc {
        let _ = std::fs::remove_file(self.host_path(rel));
        self
    }
}

impl Drop for PrivateEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The shell run by `unshare`: bind the private `/etc` (`$1`), then exec the rest (the caller's
/// [`Caller::setpriv_args`], then the command).
const WRAPPER: &str = r#"etc=$1
shift
mount --bind -- "$etc" /etc || { echo "privileged-run: cannot bind $etc over /etc" >&2; exit 125; }
if [ -d "$etc.dev" ]; then
    mount --bind -- "$etc.dev" /dev || { echo "privileged-run: cannot bind $etc.dev over /dev" >&2; exit 125; }
fi
exec "$@"
"#;

/// Exit status of the wrapper itself failing (bind mount); setpriv and env use 126/127 for a
/// failed exec.
const WRAPPER_FAILED: i32 = 125;

/// The argv (program first) that runs `command` as `caller`, with `etc` over `/etc`, in a mount
/// namespace of its own. The process keeps its pid through every step (each one execs the next),
/// so a caller that spawns it sees the command's pid.
pub fn wrapper_argv<A: AsRef<OsStr>>(etc: &Path, caller: &Caller, command: &[A]) -> Vec<OsString> {
    std::iter::once("unshare")
        .chain(crate::PRIVATE_MOUNT_SH)
        .chain([WRAPPER, "privileged-run"])
        .map(OsString::from)
        .chain([etc.as_os_str().to_owned()])
        .chain(caller.setpriv_args().into_iter().map(OsString::from))
        .chain(command.iter().map(|a| a.as_ref().to_owned()))
        .collect()
}

/// The command that runs `argv` (program first) as `caller` with `etc` over `/etc` (through
/// [`wrapper_argv`]), stdin `/dev/null`, in the calling thread's network namespace, its
/// environment `PATH=`[`CLEAN_PATH`] plus `env` and nothing else: the last step is
/// `env -i PATH=… K=V… ARGV` (see [`run_privileged`]). Returns it with its whole argv, for
/// messages.
pub fn privileged_command<A: AsRef<OsStr>>(
    etc: &Path,
    caller: &Caller,
    env: &[(&str, &str)],
    argv: &[A],
) -> (Command, Vec<OsString>) {
    let command: Vec<OsString> = ["env", "-i"]
        .into_iter()
        .map(OsString::from)
        .chain([format!("PATH={CLEAN_PATH}").into()])
        .chain(env.iter().map(|(k, v)| format!("{k}={v}").into()))
        .chain(argv.iter().map(|a| a.as_ref().to_owned()))
        .collect();
    let wrapped = wrapper_argv(etc, caller, &command);
    let mut cmd = Command::new(&wrapped[0]);
    cmd.args(&wrapped[1..])
        .env_clear()
        .env("PATH", CLEAN_PATH)
        .stdin(Stdio::null());
    (cmd, wrapped)
}

/// Panics unless the wrapper of [`privileged_command`] (unshare, mount, setpriv, env) got as far
/// as the program under test: its own failures exit 125 (a bind mount), 126 or 127 (an exec), or
/// print a line of theirs on stderr. The message shows `outcome` and the whole `argv`.
#[track_caller]
pub(crate) fn assert_wrapper_ran(code: i32, stderr: &str, outcome: &impl Debug, argv: &[OsString]) {
    let wrapper_failed = [WRAPPER_FAILED, 126, 127].contains(&code)
        || stderr.lines().any(|l| {
            ["unshare:", "mount:", "setpriv:", "env:", "privileged-run:"]
                .iter()
                .any(|p| l.starts_with(p))
        });
    assert!(
        !wrapper_failed,
        "the privileged-run wrapper failed (not the program under test): {outcome:#?}\n\
         argv: {argv:?}"
    );
}

/// Runs `bin ARGS` as `caller` with `etc` bound over `/etc` (see the module docs), with an
/// environment of `PATH=`[`CLEAN_PATH`] plus `env`, stdin `/dev/null`, in the calling thread's
/// network namespace, and waits for it. Panics if the wrapper itself (unshare, mount, setpriv,
/// env) failed, so the result is always the binary's own.
///
/// `env` reaches `bin` alone: the last step before it is `env -i PATH=… K=V… BIN`, so a hostile
/// variable (`LD_PRELOAD`, `IFS`, …) under test does not act on the wrapper's own programs. An
/// entry with an empty name (`("", "X=1")`) becomes the malformed environment entry `=X=1`.
pub fn run_privileged<A: AsRef<OsStr>>(
    etc: &PrivateEtc,
    caller: &Caller,
    bin: &Path,
    args: &[A],
    env: &[(&str, &str)],
) -> RunOutput {
    let argv: Vec<&OsStr> = std::iter::once(bin.as_os_str())
        .chain(args.iter().map(AsRef::as_ref))
        .collect();
    let (cmd, wrapped) = privileged_command(etc.path(), caller, env, &argv);
    let out = output_of(cmd, bin);
    assert_wrapper_ran(out.code, &out.stderr, &out, &wrapped);
    out
}

/// The receiving end of a private `/dev/log` (see [`PrivateEtc::syslog`]).
pub struct SyslogListener {
    sock: std::os::unix::net::UnixDatagram,
    dev: PathBuf,
}

impl SyslogListener {
    /// Every datagram received so far (waiting briefly for stragglers), oldest first.
    pub fn take(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        self.sock
            .set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .expect("set a read timeout on the syslog listener");
        while let Ok(n) = self.sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }
}

impl Drop for SyslogListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dev);
    }
}
