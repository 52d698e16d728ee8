//! A private libvirt for `qemu:///session`: `libvirtd` run by an unprivileged user, as a desktop
//! user's session daemon would be, but in namespaces of its own so nothing of it reaches the host.
//!
//! [`LibvirtSession::start`] runs `unshare --mount --pid --fork --kill-child --mount-proc` from the
//! calling thread (so libvirtd, the helper it runs and QEMU share the test's network namespace).
//! Inside, a root shell (the pid namespace's init, which also reaps the QEMU processes libvirt
//! daemonizes: without a reaper libvirt waits ~30 s per process for zombies to die) mounts:
//!
//! - a tmpfs on `/run`, holding the upper layers of overlays on `/etc` and `/var`, so the user
//!   (`/etc/passwd`, `/etc/group`) and `/etc/qemu/bridge.conf` exist only there;
//! - tmpfs on `/tmp` and `/home` (the user's `HOME`, with `~/.config/libvirt/qemu.conf` naming the
//!   bridge helper), and a sysfs of the test's network namespace on `/sys`;
//!
//! then starts `libvirtd` as the user with `HOME`, `XDG_RUNTIME_DIR=/run/user/UID` and a clean
//! `PATH`, and waits. Dropping the session SIGKILLs that init: the kernel then kills everything in
//! the pid namespace (libvirtd, QEMU), the taps close with QEMU, and the mounts vanish with the
//! mount namespace. `virsh` runs in the same namespaces through `nsenter`, as the user.
//!
//! libvirt's session mode runs the bridge helper itself (QEMU gets only the tap's descriptor, and
//! runs under `-sandbox …,spawn=deny`): `HELPER [--use-vnet] --br=BR --fd=N`, `--use-vnet` only for
//! a virtio NIC, stdin and stdout `/dev/null`, stderr a pipe whose text ends up in virsh's error.
//! `<domain type='qemu'>` makes libvirt pass `-accel tcg`; the user cannot open `/dev/kvm` anyway.
//! `stdio_handler = "file"` keeps `virtlogd` out (QEMU's log is `~/.cache/libvirt/qemu/log/`).

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{
    assert_in_test_netns, output_within, require_root, GuestImage, NicModel, PipeReader, RunOutput,
    CLEAN_PATH,
};

/// Limit for libvirtd to come up and for one `virsh` command (a first `virsh create` makes
/// libvirtd probe QEMU, which takes seconds under TCG on a loaded machine).
pub const LIBVIRT_TIMEOUT: Duration = Duration::from_secs(120);

/// The URI `virsh` connects to.
pub const SESSION_URI: &str = "qemu:///session";

/// The script `unshare` runs as the new pid namespace's init. `$1` uid, `$2` gid, `$3` user name,
/// `$4` the text of `/etc/qemu/bridge.conf`, `$5` the text of `~/.config/libvirt/qemu.conf`,
/// `$6` PATH for libvirtd.
const SESSION_INIT: &str = r#"set -eu
uid=$1 gid=$2 user=$3 bridge_conf=$4 qemu_conf=$5 path=$6
home=/home/$user
mount -t tmpfs -o mode=0755 ifup-testkit /run
mkdir -m 0700 /run/.ifup-testkit
exec 2>>/run/.ifup-testkit/libvirtd.log
for d in etc var; do
    mkdir "/run/.ifup-testkit/$d.upper" "/run/.ifup-testkit/$d.work"
    mount -t overlay -o "lowerdir=/$d,upperdir=/run/.ifup-testkit/$d.upper,workdir=/run/.ifup-testkit/$d.work" ifup-testkit "/$d"
done
mount -t tmpfs -o mode=1777 ifup-testkit /tmp
mount -t tmpfs -o mode=0755 ifup-testkit /home
mount -t sysfs ifup-testkit /sys
echo "$user:x:$uid:$gid:ifup-testkit libvirt session user:$home:/bin/sh" >> /etc/passwd
echo "$user:x:$gid:" >> /etc/group
mkdir -p -m 0755 /etc/qemu
printf '%s' "$bridge_conf" > /etc/qemu/bridge.conf
chmod 0644 /etc/qemu/bridge.conf
mkdir -p "$home/.config/libvirt" "/run/user/$uid"
printf '%s' "$qemu_conf" > "$home/.config/libvirt/qemu.conf"
chown -R "$uid:$gid" "$home" "/run/user/$uid"
chmod 0700 "/run/user/$uid"
cd /
echo "ifup-testkit: starting libvirtd as uid $uid" >&2
setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all -- \
    env -i HOME="$home" USER="$user" LOGNAME="$user" XDG_RUNTIME_DIR="/run/user/$uid" PATH="$path" \
    libvirtd </dev/null >/dev/null &
libvirtd=$!
# The init of this pid namespace: reap whatever is orphaned here (QEMU after libvirt's double
# fork) for as long as libvirtd lives.
while kill -0 "$libvirtd" 2>/dev/null; do wait || true; done
echo "ifup-testkit: libvirtd exited" >&2
"#;

/// Panics, naming the Debian package, unless libvirtd with its QEMU driver, virsh and the
/// util-linux tools the session needs are installed.
pub fn require_libvirt() {
    require_root();
    for (tool, package) in [
        ("libvirtd", "libvirt-daemon"),
        ("virsh", "libvirt-clients"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("setpriv", "util-linux"),
        ("qemu-system-x86_64", "qemu-system-x86"),
    ] {
        assert!(
            CLEAN_PATH
                .split(':')
                .any(|dir| Path::new(dir).join(tool).is_file()),
            "`{tool}` not found in {CLEAN_PATH}: install {package} (scripts/deps.sh installs \
             everything the tests need)"
        );
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

/// Who runs the session daemon and what it is configured with; see [`LibvirtSession::start`].
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
    /// More lines for the user's `qemu.conf`.
    pub qemu_conf_extra: String,
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
            qemu_conf_extra: String::new(),
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
             stdio_handler = \"file\"\n{}",
            self.qemu_conf_extra
        )
    }
}

/// A running private session libvirtd; see the module documentation. Stopped on drop.
pub struct LibvirtSession {
    config: SessionConfig,
    /// `unshare`, our child.
    unshare: Child,
    /// The pid (in our namespace) of the session's init shell.
    init: u32,
    /// `unshare`'s stderr: what the init shell printed before its log file existed.
    early_stderr: Option<PipeReader>,
}

impl LibvirtSession {
    /// Starts libvirtd as `config.uid` in private namespaces (see the module documentation), in
    /// the calling thread's network namespace (a [`crate::Netns`]), and waits until it listens.
    /// Panics, with libvirtd's output, if it does not within [`LIBVIRT_TIMEOUT`].
    pub fn start(config: SessionConfig) -> LibvirtSession {
        require_libvirt();
        assert_in_test_netns("starting libvirtd");
        assert!(
            Path::new("/home").is_dir(),
            "/home does not exist: the session's HOME is a tmpfs mounted on it"
        );
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
            SESSION_INIT,
            "ifup-testkit-libvirt",
        ])
        .arg(config.uid.to_string())
        .arg(config.gid.to_string())
        .arg(&config.user)
        .arg(&config.bridge_conf)
        .arg(config.qemu_conf())
        .arg(CLEAN_PATH)
        .env_clear()
        .env("PATH", CLEAN_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut unshare = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run unshare: {e}"));
        let early_stderr = unshare.stderr.take().map(PipeReader::spawn);
        let mut session = LibvirtSession {
            config,
            init: 0,
            unshare,
            early_stderr,
        };
        let deadline = Instant::now() + LIBVIRT_TIMEOUT;
        let children = format!("/proc/{0}/task/{0}/children", session.unshare.id());
        session.init = session.poll(deadline, "unshare to fork the session's init", |_| {
            std::fs::read_to_string(&children)
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        });
        let socket = session.path_in_ns(&format!(
            "/run/user/{}/libvirt/libvirt-sock",
            session.config.uid
        ));
        session.poll(deadline, "libvirtd to listen", |_| {
            socket.exists().then_some(())
        });
        session
    }

    /// Polls `cond` every 20 ms until `deadline`; panics with the session's logs if the
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
                    "the libvirt session ended ({status}) while waiting for {what}:\n{early}\n{}",
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

    /// The session's configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The pid (in the test's pid namespace) of the session's init shell.
    pub fn init_pid(&self) -> u32 {
        self.init
    }

    /// The user's `HOME` inside the session (`/home/USER`).
    pub fn home(&self) -> String {
        format!("/home/{}", self.config.user)
    }

    /// Where `path` (absolute, as the session sees it) is reachable from the test, through
    /// `/proc/INIT/root`.
    pub fn path_in_ns(&self, path: &str) -> PathBuf {
        assert!(path.starts_with('/'), "absolute path expected: {path:?}");
        PathBuf::from(format!("/proc/{}/root{path}", self.init))
    }

    /// The text of `path` inside the session, or `None` if it cannot be read.
    pub fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.path_in_ns(path)).ok()
    }

    /// Writes `text` to `path` inside the session, owned by the user, mode 0644.
    pub fn write_user_file(&self, path: &str, text: &str) {
        let real = self.path_in_ns(path);
        std::fs::write(&real, text).unwrap_or_else(|e| panic!("write {}: {e}", real.display()));
        std::os::unix::fs::lchown(&real, Some(self.config.uid), Some(self.config.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", real.display()));
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", real.display()));
    }

    /// libvirtd's stderr so far (its own log lines at level warning and above), with the init
    /// shell's messages.
    pub fn libvirtd_log(&self) -> String {
        self.read("/run/.ifup-testkit/libvirtd.log")
            .unwrap_or_else(|| "(no libvirtd log)".to_owned())
    }

    /// QEMU's log for domain `name` (`~/.cache/libvirt/qemu/log/NAME.log`: command line,
    /// environment, stderr).
    pub fn domain_log(&self, name: &str) -> String {
        self.read(&format!(
            "{}/.cache/libvirt/qemu/log/{name}.log",
            self.home()
        ))
        .unwrap_or_default()
    }

    /// Runs `virsh -c qemu:///session ARGS` as the user inside the session (`nsenter` into its
    /// mount and pid namespaces, `setpriv` to the user, an environment of `HOME`, `USER`,
    /// `XDG_RUNTIME_DIR`, `PATH` and `LIBVIRT_AUTOSTART=0`, so virsh never starts a daemon of
    /// its own). Panics if it takes longer than [`LIBVIRT_TIMEOUT`].
    pub fn virsh(&self, args: &[&str]) -> RunOutput {
        let c = &self.config;
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--target={}", self.init))
            .args(["--mount", "--pid", "--wd=/", "--", "setpriv"])
            .arg(format!("--reuid={}", c.uid))
            .arg(format!("--regid={}", c.gid))
            .args(["--clear-groups", "--inh-caps=-all", "--", "env", "-i"])
            .arg(format!("HOME={}", self.home()))
            .arg(format!("USER={}", c.user))
            .arg(format!("LOGNAME={}", c.user))
            .arg(format!("XDG_RUNTIME_DIR=/run/user/{}", c.uid))
            .arg(format!("PATH={CLEAN_PATH}"))
            .args(["LIBVIRT_AUTOSTART=0", "virsh", "-c", SESSION_URI])
            .args(args)
            .env_clear()
            .env("PATH", CLEAN_PATH);
        output_within(cmd, LIBVIRT_TIMEOUT, &format!("virsh {}", args.join(" ")))
    }

    /// Like [`LibvirtSession::virsh`], but panics with the output and the logs unless it succeeds.
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

    /// Writes the domain's XML to `~/NAME.xml` and runs `virsh create` on it (a transient domain,
    /// gone once it stops). Returns virsh's output, whatever its exit status.
    pub fn create(&self, domain: &Domain) -> RunOutput {
        let xml_path = format!("{}/{}.xml", self.home(), domain.name);
        self.write_user_file(&xml_path, &domain.xml(&self.console_path(&domain.name)));
        self.virsh(&["create", &xml_path])
    }

    /// Where the serial console of domain `name` is written, inside the session.
    pub fn console_path(&self, name: &str) -> String {
        format!("{}/{name}.console", self.home())
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

impl Drop for LibvirtSession {
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

/// A transient TCG domain booting the test guest ([`GuestImage`]) with one NIC on a bridge
/// (`<interface type='bridge'>`); its XML is [`Domain::xml`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub image: GuestImage,
    pub bridge: String,
    pub model: NicModel,
    /// Kernel command-line arguments after the defaults (`console=ttyS0 panic=-1 quiet`).
    pub cmdline: Vec<String>,
    pub memory_mib: u32,
}

impl Domain {
    /// Domain `name` booting `image`, its NIC (`model`) on `bridge`. The image must be readable
    /// by the session's user (build it under [`crate::privileged::suitable_base`]).
    pub fn new(name: &str, image: &GuestImage, bridge: &str, model: NicModel) -> Domain {
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
            bridge: bridge.to_owned(),
            model,
            cmdline: Vec::new(),
            memory_mib: 256,
        }
    }

    /// The guest's `eth0` address, e.g. `10.0.2.15/24`.
    pub fn guest_ip(mut self, cidr: &str) -> Domain {
        self.cmdline.push(format!("ifup_rs.ip={cidr}"));
        self
    }

    /// The address the guest pings ([`crate::marker::PING_OK`] / `PING_FAIL`).
    pub fn ping(mut self, addr: &str) -> Domain {
        self.cmdline.push(format!("ifup_rs.ping={addr}"));
        self
    }

    /// The guest idles after its ping ([`crate::marker::HOLD`]) instead of powering off.
    pub fn hold(mut self) -> Domain {
        self.cmdline.push("ifup_rs.hold=1".to_owned());
        self
    }

    /// The domain XML, with the serial console written to `console` (a path inside the session).
    /// ACPI is on so that the guest's `poweroff -f` powers QEMU off (libvirt then ends the
    /// transient domain); no USB, no balloon, no option ROM, for a quick boot.
    pub fn xml(&self, console: &str) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('\'', "&apos;")
        };
        let mut cmdline = String::from("console=ttyS0 panic=-1 quiet");
        for a in &self.cmdline {
            cmdline.push(' ');
            cmdline.push_str(a);
        }
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
    <interface type='bridge'>
      <source bridge='{bridge}'/>
      <model type='{model}'/>
      <rom enabled='no'/>
    </interface>
    <serial type='file'>
      <source path='{console}'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
",
            name = esc(&self.name),
            mem = self.memory_mib,
            kernel = esc(&self.image.kernel.display().to_string()),
            initrd = esc(&self.image.initrd.display().to_string()),
            cmdline = esc(&cmdline),
            bridge = esc(&self.bridge),
            model = self.model.libvirt_model(),
            console = esc(console),
        )
    }
}
