//! Private libvirt daemons: the session instance (`qemu:///session`, [`Libvirtd::session`]), run
//! by an unprivileged user as a desktop user's session daemon would be, and the system instance
//! (`qemu:///system`, [`Libvirtd::system`]), run by root as the distribution's service would be.
//! Each runs in namespaces of its own, so nothing of it reaches the host.
//!
//! Both run `unshare --mount --pid --fork --kill-child --mount-proc` from the calling thread (so
//! libvirtd, the helpers and scripts it runs and QEMU share the test's network namespace).
//! Inside, a root shell (the pid namespace's init, which also reaps the QEMU processes libvirt
//! daemonizes: without a reaper libvirt waits ~30 s per process for zombies to die) mounts:
//!
//! - a tmpfs on `/run`, holding the upper layers of overlays on `/etc` and `/var` (and, for the
//!   system instance, `/usr/libexec`), so whatever the test or libvirt writes there exists only
//!   in the namespace. The empty `/run` also hides the host's D-Bus and systemd, and the host
//!   libvirt's own sockets and state;
//! - the instance's own files (below), then a tmpfs on `/tmp` and a sysfs of the test's network
//!   namespace on `/sys` (sysfs shows the devices of the namespace that mounts it). The build's
//!   directory (cargo's target directory: the helpers' copies and the guest images) is bound
//!   back in place when a tmpfs covers it (a checkout under `/tmp` or `/home`);
//!
//! then starts `libvirtd` with a clean environment, and waits. Dropping the [`Libvirtd`] SIGKILLs
//! that init: the kernel then kills everything in the pid namespace (libvirtd, QEMU), the taps
//! close with QEMU, and the mounts vanish with the mount namespace. `virsh` runs in the same
//! namespaces through `nsenter`, as the daemon's user. `<domain type='qemu'>` makes libvirt pass
//! `-accel tcg`. `stdio_handler = "file"` in `qemu.conf` keeps `virtlogd` (a daemon no one
//! starts here) out: QEMU's log is a plain file ([`Libvirtd::domain_log`]).
//!
//! **Session**: the user (`/etc/passwd`, `/etc/group`) and `/etc/qemu/bridge.conf` exist only in
//! the overlay; `/home` is a tmpfs holding the user's `HOME`, with `~/.config/libvirt/qemu.conf`
//! naming the bridge helper; libvirtd runs as the user with `HOME`,
//! `XDG_RUNTIME_DIR=/run/user/UID` and a clean `PATH`. Session mode runs the bridge helper itself
//! (QEMU gets only the tap's descriptor, and runs under `-sandbox …,spawn=deny`):
//! `HELPER [--use-vnet] --br=BR --fd=N`, `--use-vnet` only for a virtio NIC, stdin and stdout
//! `/dev/null`, stderr a pipe whose text ends up in virsh's error.
//!
//! **System**: copies of the binaries under test are `/usr/libexec/qemu-ifup-rs` and
//! `/usr/libexec/qemu-ifdown-rs` (in the overlay), so a domain names them as the packages install
//! them; `/etc/qemu-ifup-rs.conf` holds the test's rules; `/etc/libvirt` is an empty tmpfs but
//! for `qemu.conf` ([`SystemConfig::qemu_conf`] says what each setting is for), so none of the
//! host's libvirt configuration (defined domains and networks, their autostart links) applies;
//! libvirtd runs as root with `PATH`, `HOME=/root` and whatever the test adds
//! ([`SystemConfig::env`]). For `<interface type='ethernet'>` libvirt creates the tap itself and
//! runs `<script path=…>` / `<downscript path=…>` with the tap's name.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::bins::{INSTALLED_DOWN, INSTALLED_UP};
use crate::guest::{ping_verdicts, KernelCmdline, GUEST_MEMORY_MIB};
use crate::privileged::Caller;
use crate::{
    assert_in_test_netns, marker, output_within, require_root, tool, GuestImage, NicModel,
    PipeReader, RunOutput, CLEAN_PATH, QEMU_TIMEOUT,
};

/// Limit for libvirtd to come up and for one `virsh` command (a first `virsh create` makes
/// libvirtd probe QEMU, which takes seconds under TCG on a loaded machine).
pub const LIBVIRT_TIMEOUT: Duration = Duration::from_secs(120);

/// The URI of the session instance.
pub const SESSION_URI: &str = "qemu:///session";

/// The URI of the system instance.
pub const SYSTEM_URI: &str = "qemu:///system";

/// Where the init shell keeps the overlays' upper layers, libvirtd's log and (system instance)
/// the domains' XML and consoles: root's only.
const PRIVATE_DIR: &str = "/run/.ifup-testkit";

/// The start of every instance's init script (`unshare` runs it as the new pid namespace's
/// init): `/run`, the log, overlays on `/etc` and `/var`, `overlay DIR` for more, and `cover DIR
/// MODE` for a tmpfs on a directory that keeps the build's directory (`$1`: the helpers' copies
/// and the guest images are there) visible when it was under `DIR` (a checkout in `/tmp` or
/// `/home`).
const INIT_START: &str = r#"set -eu
keep=$1
shift
mount -t tmpfs -o mode=0755 ifup-testkit /run
mkdir -m 0700 /run/.ifup-testkit /run/.ifup-testkit/keep
exec 2>>/run/.ifup-testkit/libvirtd.log
mount --bind "$keep" /run/.ifup-testkit/keep
# cover DIR MODE: an empty tmpfs on /DIR, with the build's directory back in place.
cover() {
    mount -t tmpfs -o "mode=$2" ifup-testkit "/$1"
    case "$keep/" in
    "/$1/"*) mkdir -p "$keep" && mount --bind /run/.ifup-testkit/keep "$keep" ;;
    esac
}
# overlay DIR: /DIR as the host has it, every change kept in /run.
overlay() {
    upper=/run/.ifup-testkit/$(printf '%s' "$1" | tr / _)
    mkdir "$upper.upper" "$upper.work"
    mount -t overlay -o "lowerdir=/$1,upperdir=$upper.upper,workdir=$upper.work" ifup-testkit "/$1"
}
overlay etc
overlay var
"#;

/// The end of every init script. The instance's part (between [`INIT_START`] and this) has
/// shifted its own parameters away: what is left is the command that starts libvirtd.
const INIT_END: &str = r#"cover tmp 1777
mount -t sysfs ifup-testkit /sys
cd /
echo "ifup-testkit: starting $*" >&2
"$@" </dev/null >/dev/null &
libvirtd=$!
# The init of this pid namespace: reap whatever is orphaned here (QEMU after libvirt's double
# fork) for as long as libvirtd lives.
while kill -0 "$libvirtd" 2>/dev/null; do wait || true; done
echo "ifup-testkit: libvirtd exited" >&2
"#;

/// The session instance's part of the init script. `$1` uid, `$2` gid, `$3` user name, `$4` the
/// text of `/etc/qemu/bridge.conf`, `$5` the text of `~/.config/libvirt/qemu.conf`.
const SESSION_INIT: &str = r#"uid=$1 gid=$2 user=$3 bridge_conf=$4 qemu_conf=$5
shift 5
home=/home/$user
cover home 0755
echo "$user:x:$uid:$gid:ifup-testkit libvirt session user:$home:/bin/sh" >> /etc/passwd
echo "$user:x:$gid:" >> /etc/group
mkdir -p -m 0755 /etc/qemu
printf '%s' "$bridge_conf" > /etc/qemu/bridge.conf
chmod 0644 /etc/qemu/bridge.conf
mkdir -p "$home/.config/libvirt" "/run/user/$uid"
printf '%s' "$qemu_conf" > "$home/.config/libvirt/qemu.conf"
chown -R "$uid:$gid" "$home" "/run/user/$uid"
chmod 0700 "/run/user/$uid"
"#;

/// The system instance's part of the init script. `$1` the `qemu-ifup` to install, `$2` the
/// `qemu-ifdown`, `$3` the text of `/etc/qemu-ifup-rs.conf`, `$4` the text of
/// `/etc/libvirt/qemu.conf`.
const SYSTEM_INIT: &str = r#"ifup=$1 ifdown=$2 ifup_conf=$3 qemu_conf=$4
shift 4
overlay usr/libexec
install -m 0755 "$ifup" /usr/libexec/qemu-ifup-rs
install -m 0755 "$ifdown" /usr/libexec/qemu-ifdown-rs
printf '%s' "$ifup_conf" > /etc/qemu-ifup-rs.conf
chmod 0644 /etc/qemu-ifup-rs.conf
mkdir -p /etc/libvirt
mount -t tmpfs -o mode=0755 ifup-testkit /etc/libvirt
printf '%s' "$qemu_conf" > /etc/libvirt/qemu.conf
# Debian's libvirt looks up its built-in QEMU user before it reads qemu.conf, and stops if
# there is none (libvirt-daemon-system creates it; the test's qemu.conf then says root).
grep -q '^libvirt-qemu:' /etc/passwd ||
    echo 'libvirt-qemu:x:64055:64055:ifup-testkit:/var/lib/libvirt:/usr/sbin/nologin' >> /etc/passwd
grep -q '^libvirt-qemu:' /etc/group || echo 'libvirt-qemu:x:64055:' >> /etc/group
"#;

/// Panics, naming the Debian package, unless libvirtd with its QEMU driver, virsh and the
/// util-linux tools the instances need are installed.
fn require_libvirt() {
    require_root();
    for (name, package) in [
        ("libvirtd", "libvirt-daemon"),
        ("virsh", "libvirt-clients"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("setpriv", "util-linux"),
        ("qemu-system-x86_64", "qemu-system-x86"),
    ] {
        tool(name, package);
    }
    let driver = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            e.path()
                .join("libvirt/connection-driver/libvirt_driver_qemu.so")
        })
        .any(|p| p.is_file());
    assert!(
        driver,
        "libvirt's QEMU driver (libvirt_driver_qemu.so) is not installed: install \
         libvirt-daemon-driver-qemu"
    );
}

/// Who runs the session daemon and what it is configured with; see [`Libvirtd::session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The unprivileged user: uid, primary gid (no supplementary groups), name.
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    /// `bridge_helper = "…"` in the user's `qemu.conf`.
    pub bridge_helper: PathBuf,
    /// The text of `/etc/qemu/bridge.conf` (owned by root, mode 0644).
    pub bridge_conf: String,
}

impl SessionConfig {
    /// User `lvtest` with uid and gid `uid`, the given helper, an empty ACL (denies everything).
    pub fn new(uid: u32, bridge_helper: &Path) -> SessionConfig {
        SessionConfig {
            uid,
            gid: uid,
            user: "lvtest".to_owned(),
            bridge_helper: bridge_helper.to_owned(),
            bridge_conf: String::new(),
        }
    }

    /// Sets the text of `/etc/qemu/bridge.conf`.
    pub fn bridge_conf(mut self, text: &str) -> SessionConfig {
        self.bridge_conf = text.to_owned();
        self
    }

    /// The user's `~/.config/libvirt/qemu.conf`.
    pub fn qemu_conf(&self) -> String {
        let helper = self
            .bridge_helper
            .to_str()
            .expect("the helper's path must be UTF-8");
        assert!(
            !helper.contains('"') && !helper.contains('\\'),
            "no quotes or backslashes in {helper:?}"
        );
        format!(
            "# written by ifup_testkit::libvirt\nbridge_helper = \"{helper}\"\n\
             stdio_handler = \"file\"\n"
        )
    }

    /// `HOME` inside the session (`/home/USER`).
    fn home(&self) -> String {
        format!("/home/{}", self.user)
    }
}

/// What the system daemon is configured with; see [`Libvirtd::system`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemConfig {
    /// Copied to `/usr/libexec/qemu-ifup-rs` (normally `env!("CARGO_BIN_EXE_qemu-ifup")`).
    pub ifup: PathBuf,
    /// Copied to `/usr/libexec/qemu-ifdown-rs`.
    pub ifdown: PathBuf,
    /// The text of `/etc/qemu-ifup-rs.conf` (owned by root, mode 0644).
    pub ifup_conf: String,
    /// Variables for libvirtd's environment besides `PATH` and `HOME=/root`.
    pub env: Vec<(String, String)>,
}

impl SystemConfig {
    /// The given binaries, `/etc/qemu-ifup-rs.conf` with `ifup_conf`, no more environment.
    pub fn new(ifup: &Path, ifdown: &Path, ifup_conf: &str) -> SystemConfig {
        SystemConfig {
            ifup: ifup.to_owned(),
            ifdown: ifdown.to_owned(),
            ifup_conf: ifup_conf.to_owned(),
            env: Vec::new(),
        }
    }

    /// Adds `NAME=VALUE` to libvirtd's environment.
    pub fn env(mut self, name: &str, value: &str) -> SystemConfig {
        assert!(
            !name.is_empty() && !name.contains('='),
            "not a variable name: {name:?}"
        );
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `/etc/libvirt/qemu.conf`: what the system instance needs to run in the namespace, without
    /// systemd, and without touching anything of the host.
    ///
    /// - `user`/`group` root: QEMU then reads the test's files and writes its console where
    ///   libvirtd can (Debian's default, `libvirt-qemu`, could do neither here);
    /// - `dynamic_ownership = 0`: otherwise libvirt chowns the guest's kernel, initrd and console
    ///   to QEMU's user while the domain runs, and records their owners in `trusted.libvirt.*`
    ///   xattrs on those (host) files; both measured on the kernel of a test image;
    /// - `security_driver = "none"`: on a host with AppArmor (Debian's default), libvirt would
    ///   load a profile for each domain into the host's kernel;
    /// - `cgroup_controllers = [ ]`: with no systemd-machined to ask (the empty `/run` hides
    ///   D-Bus), libvirt makes the domain's cgroups itself, under the host's hierarchy; with the
    ///   namespace's fresh sysfs it cannot, and `virsh create` fails ("Failed to create v1
    ///   controller cpu for group"); with no controller asked for, libvirt goes on without;
    /// - `stdio_handler = "file"`: no `virtlogd`.
    pub fn qemu_conf(&self) -> String {
        "# written by ifup_testkit::libvirt\nuser = \"root\"\ngroup = \"root\"\n\
         dynamic_ownership = 0\nsecurity_driver = \"none\"\ncgroup_controllers = [ ]\n\
         stdio_handler = \"file\"\n"
            .to_owned()
    }
}

/// Which instance a [`Libvirtd`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Instance {
    Session(SessionConfig),
    System(SystemConfig),
}

impl Instance {
    fn uri(&self) -> &'static str {
        match self {
            Instance::Session(_) => SESSION_URI,
            Instance::System(_) => SYSTEM_URI,
        }
    }

    /// The owner of the files the test writes for the instance (XML): the daemon's user.
    fn owner(&self) -> (u32, u32) {
        match self {
            Instance::Session(c) => (c.uid, c.gid),
            Instance::System(_) => (0, 0),
        }
    }

    /// Where the domains' XML and consoles go: the user's `HOME`, or root's private directory.
    fn work_dir(&self) -> String {
        match self {
            Instance::Session(c) => c.home(),
            Instance::System(_) => PRIVATE_DIR.to_owned(),
        }
    }

    /// The socket libvirtd listens on.
    fn socket(&self) -> String {
        match self {
            Instance::Session(c) => format!("/run/user/{}/libvirt/libvirt-sock", c.uid),
            Instance::System(_) => "/run/libvirt/libvirt-sock".to_owned(),
        }
    }

    /// QEMU's log of domain `name` (command line, environment, stderr).
    fn domain_log(&self, name: &str) -> String {
        match self {
            Instance::Session(c) => format!("{}/.cache/libvirt/qemu/log/{name}.log", c.home()),
            Instance::System(_) => format!("/var/log/libvirt/qemu/{name}.log"),
        }
    }

    /// The command that runs what follows it as the daemon's user, in a clean environment:
    /// it ends in `env -i VAR=VALUE…`, so more variables and then the program may follow.
    fn as_user(&self) -> Vec<String> {
        let path = format!("PATH={CLEAN_PATH}");
        match self {
            Instance::Session(c) => {
                let mut argv = Caller::new(c.uid, c.gid).setpriv_args();
                argv.extend([
                    "env".to_owned(),
                    "-i".to_owned(),
                    format!("HOME={}", c.home()),
                    format!("USER={}", c.user),
                    format!("LOGNAME={}", c.user),
                    format!("XDG_RUNTIME_DIR=/run/user/{}", c.uid),
                    path,
                ]);
                argv
            }
            Instance::System(_) => vec![
                "env".to_owned(),
                "-i".to_owned(),
                "HOME=/root".to_owned(),
                path,
            ],
        }
    }

    /// The instance's part of the init script and its parameters, then the command that starts
    /// libvirtd.
    fn init(&self) -> (&'static str, Vec<OsString>) {
        let mut args: Vec<OsString> = match self {
            Instance::Session(c) => vec![
                c.uid.to_string().into(),
                c.gid.to_string().into(),
                c.user.clone().into(),
                c.bridge_conf.clone().into(),
                c.qemu_conf().into(),
            ],
            Instance::System(c) => vec![
                c.ifup.clone().into(),
                c.ifdown.clone().into(),
                c.ifup_conf.clone().into(),
                c.qemu_conf().into(),
            ],
        };
        args.extend(self.as_user().into_iter().map(OsString::from));
        if let Instance::System(c) = self {
            args.extend(
                c.env
                    .iter()
                    .map(|(k, v)| OsString::from(format!("{k}={v}"))),
            );
        }
        args.push("libvirtd".into());
        let part = match self {
            Instance::Session(_) => SESSION_INIT,
            Instance::System(_) => SYSTEM_INIT,
        };
        (part, args)
    }
}

/// The build's directory (cargo's target directory, marked by its `CACHEDIR.TAG`) that holds the
/// running test: the helpers' copies and the guest images are in its `tmp/`.
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's executable");
    exe.ancestors()
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .unwrap_or_else(|| panic!("{} is not in a cargo target directory", exe.display()))
        .to_path_buf()
}

/// A running private libvirtd; see the module documentation. Stopped on drop.
pub struct Libvirtd {
    instance: Instance,
    /// `unshare`, our child.
    unshare: Child,
    /// The pid (in our namespace) of the instance's init shell.
    init: u32,
    /// `unshare`'s stderr: what the init shell printed before its log file existed.
    early_stderr: Option<PipeReader>,
}

impl Libvirtd {
    /// Starts the session instance: libvirtd as `config.uid` in private namespaces (see the
    /// module documentation), in the calling thread's network namespace (a [`crate::Netns`]),
    /// and waits until it listens. Panics, with libvirtd's output, if it does not within
    /// [`LIBVIRT_TIMEOUT`].
    pub fn session(config: SessionConfig) -> Libvirtd {
        assert!(
            Path::new("/home").is_dir(),
            "/home does not exist: the session's HOME is a tmpfs mounted on it"
        );
        Libvirtd::start(Instance::Session(config))
    }

    /// Starts the system instance: libvirtd as root in private namespaces (see the module
    /// documentation), in the calling thread's network namespace (a [`crate::Netns`]), with
    /// `config`'s binaries in `/usr/libexec` and its rules in `/etc/qemu-ifup-rs.conf`, and waits
    /// until it listens. Panics, with libvirtd's output, if it does not within
    /// [`LIBVIRT_TIMEOUT`].
    pub fn system(config: SystemConfig) -> Libvirtd {
        for bin in [&config.ifup, &config.ifdown] {
            assert!(bin.is_file(), "{} does not exist", bin.display());
        }
        assert!(
            Path::new("/usr/libexec").is_dir(),
            "/usr/libexec does not exist: the system instance's helpers are in an overlay on it"
        );
        Libvirtd::start(Instance::System(config))
    }

    fn start(instance: Instance) -> Libvirtd {
        require_libvirt();
        assert_in_test_netns("starting libvirtd");
        let (part, args) = instance.init();
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            &format!("{INIT_START}{part}{INIT_END}"),
            "ifup-testkit-libvirt",
        ])
        .arg(build_dir())
        .args(args)
        .env_clear()
        .env("PATH", CLEAN_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut unshare = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run unshare: {e}"));
        let early_stderr = unshare.stderr.take().map(PipeReader::spawn);
        let mut lv = Libvirtd {
            instance,
            init: 0,
            unshare,
            early_stderr,
        };
        let deadline = Instant::now() + LIBVIRT_TIMEOUT;
        let children = format!("/proc/{0}/task/{0}/children", lv.unshare.id());
        lv.init = lv.poll(deadline, "unshare to fork the instance's init", |_| {
            std::fs::read_to_string(&children)
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        });
        let socket = lv.path_in_ns(&lv.instance.socket());
        lv.poll(deadline, "libvirtd to listen", |_| {
            socket.exists().then_some(())
        });
        lv
    }

    /// Polls `cond` every 20 ms until `deadline`; panics with the instance's logs if the
    /// namespace's init exits first or the deadline passes.
    fn poll<T>(
        &mut self,
        deadline: Instant,
        what: &str,
        mut cond: impl FnMut(&mut Self) -> Option<T>,
    ) -> T {
        loop {
            if let Some(t) = cond(self) {
                return t;
            }
            if let Ok(Some(status)) = self.unshare.try_wait() {
                let early = self
                    .early_stderr
                    .take()
                    .map(|p| p.text(Duration::from_secs(2)))
                    .unwrap_or_default();
                panic!(
                    "the private libvirtd ended ({status}) while waiting for {what}:\n{early}\n{}",
                    self.libvirtd_log()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {what}\n--- libvirtd log ---\n{}",
                    self.libvirtd_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The pid (in the test's pid namespace) of the instance's init shell.
    pub fn init_pid(&self) -> u32 {
        self.init
    }

    /// The URI `virsh` connects to.
    pub fn uri(&self) -> &'static str {
        self.instance.uri()
    }

    /// Where `path` (absolute, as the instance sees it) is reachable from the test, through
    /// `/proc/INIT/root`.
    pub fn path_in_ns(&self, path: &str) -> PathBuf {
        assert!(path.starts_with('/'), "absolute path expected: {path:?}");
        PathBuf::from(format!("/proc/{}/root{path}", self.init))
    }

    /// The text of `path` inside the instance, or `None` if it cannot be read.
    pub fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.path_in_ns(path)).ok()
    }

    /// Writes `text` to `path` inside the instance, owned by the daemon's user, with `mode`.
    pub fn write_file(&self, path: &str, text: &str, mode: u32) {
        let real = self.path_in_ns(path);
        let (uid, gid) = self.instance.owner();
        std::fs::write(&real, text).unwrap_or_else(|e| panic!("write {}: {e}", real.display()));
        std::os::unix::fs::lchown(&real, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", real.display()));
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", real.display()));
    }

    /// libvirtd's stderr so far (its own log lines at level warning and above), with the init
    /// shell's messages.
    pub fn libvirtd_log(&self) -> String {
        self.read(&format!("{PRIVATE_DIR}/libvirtd.log"))
            .unwrap_or_else(|| "(no libvirtd log)".to_owned())
    }

    /// QEMU's log for domain `name` (session: `~/.cache/libvirt/qemu/log/NAME.log`, system:
    /// `/var/log/libvirt/qemu/NAME.log`): libvirt's notes, QEMU's command line and stderr.
    pub fn domain_log(&self, name: &str) -> String {
        self.read(&self.instance.domain_log(name))
            .unwrap_or_default()
    }

    /// Runs `virsh -c URI ARGS` as the daemon's user inside the instance (`nsenter` into its
    /// mount and pid namespaces, the user's clean environment plus `LIBVIRT_AUTOSTART=0`, so
    /// virsh never starts a daemon of its own). Panics if it takes longer than
    /// [`LIBVIRT_TIMEOUT`].
    pub fn virsh(&self, args: &[&str]) -> RunOutput {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--target={}", self.init))
            .args(["--mount", "--pid", "--wd=/", "--"])
            .args(self.instance.as_user())
            .args(["LIBVIRT_AUTOSTART=0", "virsh", "-c", self.uri()])
            .args(args)
            .env_clear()
            .env("PATH", CLEAN_PATH);
        output_within(cmd, LIBVIRT_TIMEOUT, &format!("virsh {}", args.join(" ")))
    }

    /// Like [`Libvirtd::virsh`], but panics with the output and the logs unless it succeeds.
    /// Returns stdout.
    pub fn virsh_ok(&self, args: &[&str]) -> String {
        let out = self.virsh(args);
        if out.code != 0 {
            panic!(
                "`virsh {}` failed: {out:#?}\n--- libvirtd log ---\n{}",
                args.join(" "),
                self.libvirtd_log()
            );
        }
        out.stdout
    }

    /// Writes the domain's XML to `NAME.xml` in the instance's directory for them (the user's
    /// `HOME`, or root's private one) and runs `virsh create` on it (a transient domain, gone
    /// once it stops). Returns virsh's output, whatever its exit status.
    pub fn create(&self, domain: &Domain) -> RunOutput {
        let xml_path = format!("{}/{}.xml", self.instance.work_dir(), domain.name);
        self.write_file(
            &xml_path,
            &domain.xml(&self.console_path(&domain.name)),
            0o644,
        );
        self.virsh(&["create", &xml_path])
    }

    /// Where the serial console of domain `name` is written, inside the instance.
    pub fn console_path(&self, name: &str) -> String {
        format!("{}/{name}.console", self.instance.work_dir())
    }

    /// The guest's serial console so far.
    pub fn console(&self, name: &str) -> String {
        self.read(&self.console_path(name)).unwrap_or_default()
    }

    /// Names of the running domains (`virsh list --name`).
    pub fn running(&self) -> Vec<String> {
        self.virsh_ok(&["list", "--name"])
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Waits until the console of domain `name` shows one of `markers`; returns the first that
    /// appeared. Panics with the console, QEMU's log and libvirtd's log on timeout.
    pub fn wait_console<'m>(&self, name: &str, markers: &[&'m str], timeout: Duration) -> &'m str {
        let deadline = Instant::now() + timeout;
        loop {
            let console = self.console(name);
            if let Some((_, m)) = markers
                .iter()
                .filter_map(|m| console.find(m).map(|at| (at, *m)))
                .min()
            {
                return m;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {markers:?} on the console of \
                     {name}\n{}",
                    self.report(name)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the verdict of domain `name`'s guest on its ping ([`Domain::ping`]) of `target`,
    /// or its first verdict with `None`. Panics unless the ping got an answer, also when the guest
    /// reports [`marker::NET_FAIL`] first, or on timeout ([`QEMU_TIMEOUT`]), with the logs.
    #[track_caller]
    pub fn assert_pinged(&self, name: &str, target: Option<&str>) {
        let [ok, fail] = ping_verdicts(target);
        let verdict = self.wait_console(name, &[&ok, &fail, marker::NET_FAIL], QEMU_TIMEOUT);
        assert_eq!(verdict, ok, "{}", self.report(name));
    }

    /// Waits until domain `name` is no longer running (a transient domain disappears when its
    /// guest powers off). Panics with the logs on timeout.
    pub fn wait_gone(&self, name: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.running().iter().any(|d| d == name) {
            if Instant::now() >= deadline {
                panic!(
                    "domain {name} still runs after {timeout:?}\n{}",
                    self.report(name)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The console, QEMU's log and libvirtd's log, for failure messages.
    pub fn report(&self, name: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "--- console of {name} ---\n{}", self.console(name));
        let _ = writeln!(s, "--- QEMU log of {name} ---\n{}", self.domain_log(name));
        let _ = writeln!(s, "--- libvirtd log ---\n{}", self.libvirtd_log());
        s
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        // SIGKILL to the pid namespace's init: the kernel kills every process in it, and
        // `unshare`, which waits for its child, exits; then we reap it. (A signal to `unshare`
        // itself would reach the init only through --kill-child and leave it unreaped.)
        // While `unshare` runs, its child is alive or an unreaped zombie, so its pid cannot have
        // been reused by another process; once `unshare` is gone, there is nothing to stop.
        if !matches!(self.unshare.try_wait(), Ok(None)) {
            return;
        }
        let target = if self.init != 0 {
            self.init
        } else {
            self.unshare.id()
        };
        if let Ok(pid) = i32::try_from(target) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.unshare.wait();
    }
}

/// A domain's one NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interface {
    /// `<interface type='bridge'>` on this bridge (session mode runs the bridge helper for it).
    Bridge(String),
    /// `<interface type='ethernet'>`: libvirt creates tap `target` and runs `script` with its
    /// name, `downscript` once it is gone.
    Ethernet {
        target: String,
        script: String,
        downscript: String,
    },
}

/// A transient TCG domain booting the test guest ([`GuestImage`]) with one NIC
/// ([`Interface`]); its XML is [`Domain::xml`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub image: GuestImage,
    pub interface: Interface,
    /// The guest's MAC (`<mac address=…/>`); libvirt picks one when `None`.
    pub mac: Option<String>,
    pub model: NicModel,
    cmdline: KernelCmdline,
}

impl Domain {
    /// Domain `name` booting `image`, its NIC (`model`) on `bridge`. The image must be readable
    /// by the daemon's user (for a session, build it under [`crate::privileged::suitable_base`]).
    pub fn new(name: &str, image: &GuestImage, bridge: &str, model: NicModel) -> Domain {
        Domain::with_interface(name, image, Interface::Bridge(bridge.to_owned()), model)
    }

    /// Domain `name` booting `image`, its NIC (`model`) a generic ethernet interface on tap
    /// `target`, with `/usr/libexec/qemu-ifup-rs` and `/usr/libexec/qemu-ifdown-rs` as its
    /// scripts (see [`Domain::scripts`]).
    pub fn ethernet(name: &str, image: &GuestImage, target: &str, model: NicModel) -> Domain {
        let interface = Interface::Ethernet {
            target: target.to_owned(),
            script: INSTALLED_UP.to_owned(),
            downscript: INSTALLED_DOWN.to_owned(),
        };
        Domain::with_interface(name, image, interface, model)
    }

    fn with_interface(
        name: &str,
        image: &GuestImage,
        interface: Interface,
        model: NicModel,
    ) -> Domain {
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "domain names are [A-Za-z0-9_-]+: {name:?}"
        );
        Domain {
            name: name.to_owned(),
            image: image.clone(),
            interface,
            mac: None,
            model,
            cmdline: KernelCmdline::default(),
        }
    }

    /// The `<script>` and `<downscript>` of an ethernet interface. Panics for another kind.
    pub fn scripts(mut self, up: &str, down: &str) -> Domain {
        match &mut self.interface {
            Interface::Ethernet {
                script, downscript, ..
            } => {
                up.clone_into(script);
                down.clone_into(downscript);
            }
            other => panic!("scripts are for an ethernet interface, not {other:?}"),
        }
        self
    }

    /// The guest's MAC address.
    pub fn mac(mut self, mac: &str) -> Domain {
        self.mac = Some(mac.to_owned());
        self
    }

    /// The guest's `eth0` address, e.g. `10.0.2.15/24`.
    pub fn guest_ip(mut self, cidr: &str) -> Domain {
        self.cmdline.guest_ip(cidr);
        self
    }

    /// The addresses the guest pings (`ADDR[,ADDR…]`; [`Libvirtd::assert_pinged`]).
    pub fn ping(mut self, addrs: &str) -> Domain {
        self.cmdline.ping(addrs);
        self
    }

    /// The guest idles after its ping ([`crate::marker::HOLD`]) instead of powering off.
    pub fn hold(mut self) -> Domain {
        self.cmdline.hold();
        self
    }

    /// The `<interface>` element, unindented, each line ending in a newline; elements in the
    /// order the guide shows them. A bridge interface has no option ROM, for a quicker boot; an
    /// ethernet one is as the guide writes it.
    pub fn interface_xml(&self) -> String {
        let mut s = String::new();
        let kind = match self.interface {
            Interface::Bridge(_) => "bridge",
            Interface::Ethernet { .. } => "ethernet",
        };
        let _ = writeln!(s, "<interface type='{kind}'>");
        if let Interface::Bridge(bridge) = &self.interface {
            let _ = writeln!(s, "  <source bridge='{}'/>", xml_escape(bridge));
        }
        if let Some(mac) = &self.mac {
            let _ = writeln!(s, "  <mac address='{}'/>", xml_escape(mac));
        }
        if let Interface::Ethernet { target, .. } = &self.interface {
            let _ = writeln!(s, "  <target dev='{}'/>", xml_escape(target));
        }
        let _ = writeln!(s, "  <model type='{}'/>", self.model.libvirt_model());
        match &self.interface {
            Interface::Bridge(_) => s.push_str("  <rom enabled='no'/>\n"),
            Interface::Ethernet {
                script, downscript, ..
            } => {
                let _ = writeln!(s, "  <script path='{}'/>", xml_escape(script));
                let _ = writeln!(s, "  <downscript path='{}'/>", xml_escape(downscript));
            }
        }
        s.push_str("</interface>\n");
        s
    }

    /// The domain XML, with the serial console written to `console` (a path inside the
    /// instance). ACPI is on so that the guest's `poweroff -f` powers QEMU off (libvirt then ends
    /// the transient domain); no USB, no balloon, for a quick boot.
    pub fn xml(&self, console: &str) -> String {
        let interface: String = self
            .interface_xml()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect();
        format!(
            "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{mem}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
{interface}    <serial type='file'>
      <source path='{console}'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
",
            name = xml_escape(&self.name),
            mem = GUEST_MEMORY_MIB,
            kernel = xml_escape(&self.image.kernel.display().to_string()),
            initrd = xml_escape(&self.image.initrd.display().to_string()),
            cmdline = xml_escape(&self.cmdline.line()),
            console = xml_escape(console),
        )
    }
}

/// `s` as XML attribute or text content (quoted with `'`).
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}
