//! Launching the test guest under QEMU with a tap netdev and the scripts under test, or with a
//! bridge netdev and the bridge helper under test.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::guest::{ping_verdicts, KernelCmdline, GUEST_MEMORY_MIB};
use crate::privileged::{wrapper_argv, Caller, PrivateEtc};
use crate::{assert_in_test_netns, exit_code, link, marker, GuestImage, CLEAN_PATH, IN_TEST_NETNS};

/// Default time limit for a boot, a marker or an exit: generous, CI is a 2-core machine running
/// QEMU under TCG, several at once.
pub const QEMU_TIMEOUT: Duration = Duration::from_secs(120);

/// The guest's network card (`-device MODEL`); the test guest loads drivers for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NicModel {
    /// `virtio-net-pci` (the default): uses the tap's vnet header when it has one.
    VirtioNetPci,
    /// `e1000`: an emulated Intel card, no vnet header.
    E1000,
}

impl NicModel {
    /// QEMU's device name: `virtio-net-pci` or `e1000`.
    pub fn qemu_device(self) -> &'static str {
        match self {
            NicModel::VirtioNetPci => "virtio-net-pci",
            NicModel::E1000 => "e1000",
        }
    }

    /// libvirt's `<model type='…'/>`: `virtio` or `e1000`.
    pub fn libvirt_model(self) -> &'static str {
        match self {
            NicModel::VirtioNetPci => "virtio",
            NicModel::E1000 => "e1000",
        }
    }
}

/// The guest's netdev.
#[derive(Debug, Clone)]
enum Netdev {
    /// A guest without a NIC ([`Qemu::options_without_nic`]).
    None,
    /// `-netdev tap,ifname=TAP,script=…,downscript=…`.
    Tap(String),
    /// `-netdev bridge,br=BRIDGE,helper=HELPER`.
    Bridge { bridge: String, helper: String },
}

/// How to start QEMU; made by [`Qemu::options`], consumed by [`QemuOptions::spawn`].
#[derive(Debug, Clone)]
pub struct QemuOptions {
    image: GuestImage,
    netdev: Netdev,
    nic_model: NicModel,
    cmdline: KernelCmdline,
    guest_mac: Option<String>,
    memory_mib: u32,
    script: Option<PathBuf>,
    downscript: Option<PathBuf>,
    env: Vec<(String, String)>,
    /// Run through [`wrapper_argv`]: (the directory bound over `/etc`, the caller).
    as_caller: Option<(PathBuf, Caller)>,
    qemu: PathBuf,
}

impl QemuOptions {
    /// `script=PATH` (QEMU runs `PATH TAP` after opening the tap). Default `script=no`.
    pub fn script(mut self, path: impl AsRef<Path>) -> Self {
        self.script = Some(path.as_ref().to_owned());
        self
    }

    /// `downscript=PATH` (QEMU runs `PATH TAP` at netdev cleanup). Default `downscript=no`.
    pub fn downscript(mut self, path: impl AsRef<Path>) -> Self {
        self.downscript = Some(path.as_ref().to_owned());
        self
    }

    /// The guest's `eth0` address, e.g. `10.0.2.15/24`.
    pub fn guest_ip(mut self, cidr: &str) -> Self {
        self.cmdline.guest_ip(cidr);
        self
    }

    /// The addresses the guest pings (`ADDR[,ADDR…]`); for each it then prints
    /// `GUEST-PING-OK ADDR` or `GUEST-PING-FAIL ADDR` ([`Qemu::assert_pinged`]).
    pub fn ping(mut self, addrs: &str) -> Self {
        self.cmdline.ping(addrs);
        self
    }

    /// Adds a variable to QEMU's environment, which QEMU passes on to the scripts. The
    /// environment is otherwise cleared but for `PATH=`[`CLEAN_PATH`].
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds `arg` to the kernel command line.
    pub fn append(mut self, arg: &str) -> Self {
        self.cmdline.arg(arg);
        self
    }

    /// Guest memory in MiB (default 256). The initramfs is held twice during boot (the archive
    /// and the files unpacked from it): give large images more.
    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// Runs QEMU as `caller` (uid, gid, supplementary groups) in a mount namespace of its own
    /// where `etc` is bound over `/etc`, through [`wrapper_argv`] (unshare, mount, setpriv, each
    /// exec'ing the next, so [`Qemu::pid`] is QEMU's pid once it runs). The scripts or the bridge
    /// helper QEMU starts then read the test's `/etc/qemu/bridge.conf` and config. Needs root.
    pub fn as_caller(mut self, etc: &PrivateEtc, caller: &Caller) -> Self {
        self.as_caller = Some((etc.path().to_owned(), caller.clone()));
        self
    }

    /// The guest's network card (default [`NicModel::VirtioNetPci`]).
    pub fn nic_model(mut self, model: NicModel) -> Self {
        self.nic_model = model;
        self
    }

    /// The guest NIC's MAC address (QEMU's default, 52:54:00:12:34:56, is the same for every
    /// guest: two guests on one bridge need their own).
    pub fn guest_mac(mut self, mac: &str) -> Self {
        self.guest_mac = Some(mac.to_owned());
        self
    }

    /// After its ping the guest prints [`crate::marker::HOLD`] and idles instead of powering off,
    /// so the test decides when QEMU stops (e.g. by dropping the [`Qemu`]).
    pub fn hold(mut self) -> Self {
        self.cmdline.hold();
        self
    }

    /// The full command line, for logs and messages.
    pub fn args(&self) -> Vec<String> {
        let path_or_no = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or_else(|| "no".to_owned(), |p| p.display().to_string())
        };
        let netdev = match &self.netdev {
            Netdev::None => None,
            Netdev::Tap(tap) => Some(format!(
                "tap,id=n0,ifname={tap},script={},downscript={}",
                path_or_no(&self.script),
                path_or_no(&self.downscript)
            )),
            Netdev::Bridge { bridge, helper } => {
                Some(format!("bridge,id=n0,br={bridge},helper={helper}"))
            }
        };
        let nic = netdev.map(|netdev| {
            [
                "-netdev".to_owned(),
                netdev,
                "-device".to_owned(),
                // romfile= : no PXE option ROM, nothing to load, and a faster start.
                format!(
                    "{},netdev=n0,romfile={}",
                    self.nic_model.qemu_device(),
                    self.guest_mac
                        .as_ref()
                        .map(|m| format!(",mac={m}"))
                        .unwrap_or_default()
                ),
            ]
        });
        [
            "-accel",
            "tcg",
            "-nodefaults",
            "-no-reboot",
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "stdio",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([
            "-m".to_owned(),
            self.memory_mib.to_string(),
            "-kernel".to_owned(),
            self.image.kernel.display().to_string(),
            "-initrd".to_owned(),
            self.image.initrd.display().to_string(),
            "-append".to_owned(),
            self.cmdline.line(),
        ])
        .chain(nic.into_iter().flatten())
        .collect()
    }

    /// Starts QEMU in the calling thread's network namespace (which must be a [`crate::Netns`]
    /// when the guest has a NIC, i.e. QEMU opens a tap and runs the scripts or a bridge helper).
    pub fn spawn(self) -> Qemu {
        if !matches!(self.netdev, Netdev::None) {
            assert_in_test_netns("starting QEMU");
        }
        let mut args = self.args();
        let program = match &self.as_caller {
            None => self.qemu.clone().into_os_string(),
            Some((etc, caller)) => {
                let mut command = vec![self.qemu.as_os_str()];
                let qemu_args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
                command.extend(qemu_args);
                let mut argv = wrapper_argv(etc, caller, &command).into_iter();
                let program = argv.next().expect("wrapper_argv names a program");
                args = argv
                    .map(|a| a.into_string().expect("the wrapper's arguments are UTF-8"))
                    .collect();
                program
            }
        };
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .env_clear()
            .env("PATH", CLEAN_PATH)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (install qemu-system-x86)",
                self.qemu.display()
            )
        });
        let console = Arc::new(Stream::default());
        let stderr = Arc::new(Stream::default());
        let readers = vec![
            Stream::pump(child.stdout.take().unwrap(), Arc::clone(&console)),
            Stream::pump(child.stderr.take().unwrap(), Arc::clone(&stderr)),
        ];
        Qemu {
            child,
            tap: match self.netdev {
                Netdev::Tap(tap) => Some(tap),
                Netdev::None | Netdev::Bridge { .. } => None,
            },
            console,
            stderr,
            readers,
            command_line: format!("{} {}", program.to_string_lossy(), args.join(" ")),
            started: Instant::now(),
        }
    }
}

/// Output of one of QEMU's pipes, filled by a reader thread.
#[derive(Default)]
struct Stream {
    state: Mutex<(String, bool)>, // (text so far, EOF seen)
    changed: Condvar,
}

impl Stream {
    fn pump(mut pipe: impl Read + Send + 'static, stream: Arc<Stream>) -> JoinHandle<()> {
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = pipe.read(&mut buf).unwrap_or(0);
                let mut state = stream.state.lock().unwrap();
                if n == 0 {
                    state.1 = true;
                } else {
                    state.0.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
                drop(state);
                stream.changed.notify_all();
                if n == 0 {
                    return;
                }
            }
        })
    }

    fn text(&self) -> String {
        self.state.lock().unwrap().0.clone()
    }

    /// Waits until EOF (all writers closed the pipe) or the deadline.
    fn wait_eof(&self, deadline: Instant) {
        let mut state = self.state.lock().unwrap();
        while !state.1 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }
}

/// A running QEMU. Dropping it kills QEMU if it still runs.
pub struct Qemu {
    child: Child,
    /// The tap of `-netdev tap`, whose state a failure message shows.
    tap: Option<String>,
    console: Arc<Stream>,
    stderr: Arc<Stream>,
    readers: Vec<JoinHandle<()>>,
    command_line: String,
    started: Instant,
}

/// How QEMU ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuExit {
    /// Exit status; `128 + N` if killed by signal N.
    pub code: i32,
    /// The guest's serial console.
    pub console: String,
    /// QEMU's stderr (the scripts' stderr goes there too).
    pub stderr: String,
    /// From spawn to exit.
    pub elapsed: Duration,
}

impl Qemu {
    /// Options to boot `image` with a NIC on tap `tap` (`-netdev tap,ifname=TAP`).
    pub fn options(image: &GuestImage, tap: &str) -> QemuOptions {
        QemuOptions {
            netdev: Netdev::Tap(tap.to_owned()),
            ..Qemu::options_without_nic(image)
        }
    }

    /// Options to boot `image` with a NIC on `-netdev bridge,br=BRIDGE,helper=HELPER`: QEMU runs
    /// the bridge helper, which creates a tap, attaches it to `bridge` and sends QEMU its
    /// descriptor. QEMU 7.2 runs `HELPER --use-vnet --fd=N --br=BRIDGE` with `execv` when
    /// `helper` holds no space or tab, else `sh -c "HELPER --use-vnet --fd=N --br=BRIDGE"` (with
    /// no `--br=` of its own when `helper` already holds one). Commas would need QEMU's `,,`
    /// escape: not supported here.
    pub fn options_bridge(image: &GuestImage, bridge: &str, helper: &str) -> QemuOptions {
        assert!(
            !helper.contains(',') && !bridge.contains(','),
            "no commas in bridge or helper: {bridge:?} {helper:?}"
        );
        QemuOptions {
            netdev: Netdev::Bridge {
                bridge: bridge.to_owned(),
                helper: helper.to_owned(),
            },
            ..Qemu::options_without_nic(image)
        }
    }

    /// Options to boot `image` with no NIC at all: QEMU touches no host network, so this needs
    /// no [`crate::Netns`] (e.g. a guest that runs tests under its own kernel).
    pub fn options_without_nic(image: &GuestImage) -> QemuOptions {
        QemuOptions {
            image: image.clone(),
            netdev: Netdev::None,
            nic_model: NicModel::VirtioNetPci,
            cmdline: KernelCmdline::default(),
            guest_mac: None,
            memory_mib: GUEST_MEMORY_MIB,
            script: None,
            downscript: None,
            env: Vec::new(),
            as_caller: None,
            qemu: PathBuf::from("qemu-system-x86_64"),
        }
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The guest console so far.
    pub fn console(&self) -> String {
        self.console.text()
    }

    /// QEMU's stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Time since spawn.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until the console shows a line containing `marker`.
    /// Panics (killing QEMU) on timeout or if QEMU exits first, with the console and stderr.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) {
        self.wait_for_any(&[marker], timeout);
    }

    /// Waits until the console shows one of `markers`; returns the first that appeared (the
    /// earliest in the console). Panics like [`Qemu::wait_for`].
    pub fn wait_for_any<'m>(&mut self, markers: &[&'m str], timeout: Duration) -> &'m str {
        let deadline = Instant::now() + timeout;
        loop {
            let found = {
                let state = self.console.state.lock().unwrap();
                markers
                    .iter()
                    .filter_map(|m| state.0.find(m).map(|at| (at, *m)))
                    .min()
            };
            if let Some((_, m)) = found {
                return m;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                self.fail(&format!(
                    "QEMU exited ({}) before the console showed any of {markers:?}",
                    exit_code(status)
                ));
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "timed out after {timeout:?} waiting for {markers:?} on the console"
                ));
            }
            let state = self.console.state.lock().unwrap();
            let _ = self
                .console
                .changed
                .wait_timeout(state, Duration::from_millis(50))
                .unwrap();
        }
    }

    /// Waits for the guest's verdict on its ping ([`QemuOptions::ping`]) of `target`, or its first
    /// verdict with `None`. Panics (killing QEMU) unless the ping got an answer, also when the
    /// guest reports [`marker::NET_FAIL`] first, or on timeout ([`QEMU_TIMEOUT`]), with the
    /// console, QEMU's stderr and the tap of `-netdev tap` as it is then.
    pub fn assert_pinged(&mut self, target: Option<&str>) {
        let [ok, fail] = ping_verdicts(target);
        let verdict = self.wait_for_any(&[&ok, &fail, marker::NET_FAIL], QEMU_TIMEOUT);
        if verdict != ok {
            let tap = match &self.tap {
                Some(tap) if IN_TEST_NETNS.get() => format!("{:#?}", link(tap)),
                Some(_) | None => "(none to show)".to_owned(),
            };
            self.fail(&format!(
                "the guest could not ping: the console shows {verdict:?}, not {ok:?}; its tap: {tap}"
            ));
        }
    }

    /// Polls `cond` every 20 ms while QEMU runs, until it returns `Some`, e.g. "the tap has a
    /// master". Panics (killing QEMU) on timeout or if QEMU exits first, naming `what`.
    pub fn wait_until<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(t) = cond() {
                return t;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                self.fail(&format!(
                    "QEMU exited ({}) while waiting for {what}",
                    exit_code(status)
                ));
            }
            if Instant::now() >= deadline {
                self.fail(&format!("timed out after {timeout:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for QEMU to exit (the guest powers off by itself once done).
    /// Panics (killing QEMU) on timeout, with the console and stderr.
    pub fn wait_exit(mut self, timeout: Duration) -> QemuExit {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "timed out after {timeout:?} waiting for QEMU to exit"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = self.started.elapsed();
        // A script's child could keep a pipe open: don't wait for EOF forever.
        let eof_deadline = Instant::now() + Duration::from_secs(5);
        self.console.wait_eof(eof_deadline);
        self.stderr.wait_eof(eof_deadline);
        QemuExit {
            code: exit_code(status),
            console: self.console(),
            stderr: self.stderr(),
            elapsed,
        }
    }

    /// Kills QEMU and panics with `why`, the command line, the console and stderr.
    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.console
            .wait_eof(Instant::now() + Duration::from_secs(2));
        self.stderr
            .wait_eof(Instant::now() + Duration::from_secs(2));
        panic!(
            "{why}\n--- command ---\n{}\n--- guest console ---\n{}\n--- QEMU stderr ---\n{}\n---",
            self.command_line,
            self.console(),
            self.stderr()
        );
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}
