//! Running a bridge helper exactly as QEMU and libvirt do, and receiving the tap it sends.
//!
//! The protocol (QEMU's `net/tap.c`, libvirt's `qemuCreateInBridgePortWithHelper`): the caller
//! makes a unix stream socket pair and starts the helper with one end open as descriptor `N`:
//!
//! | caller | command |
//! | --- | --- |
//! | QEMU 7.2, `helper=` without blanks | `execv(HELPER, [HELPER, "--use-vnet", "--fd=N", "--br=BR"])` |
//! | QEMU 7.2, `helper=` with a space or tab | `execv("/bin/sh", ["sh", "-c", "HELPER --use-vnet --fd=N --br=BR"])` (no `--br=` of its own if HELPER has one) |
//! | libvirt 9.0 session mode | `HELPER [--use-vnet] --br=BR --fd=N`, `--use-vnet` only for a virtio NIC; stdin and stdout `/dev/null`, stderr a pipe that becomes libvirt's error text |
//!
//! QEMU passes `--use-vnet` whatever the NIC model. The helper creates a tap (`/dev/net/tun`,
//! `IFF_TAP | IFF_NO_PI`, plus `IFF_VNET_HDR` when asked), attaches it to BR, brings it up and
//! sends one byte with the tap's descriptor in an `SCM_RIGHTS` message; the caller requires exit
//! status 0 as well. The tap lives as long as a descriptor of it is open: the helper's own copy
//! dies with the helper, the caller's with the caller.
//!
//! [`HelperCall`] does that with a chosen [`Invocation`], as a chosen [`Caller`] in a
//! [`PrivateEtc`] (through [`crate::privileged::wrapper_argv`]), in the calling thread's network
//! namespace, with a bounded wait; [`HelperOutcome`] holds the exit status, stdout, stderr, the
//! message and the [`ReceivedTap`] (its name and flags from `TUNGETIFF`). The low-level pieces
//! ([`socket_pair`], [`spawn_with_fd`], [`recv_message`], [`ReceivedTap::from_fd`]) serve the
//! benchmark, which runs helpers without the wrapper.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, setsockopt, socketpair, sockopt, AddressFamily, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::time::TimeVal;

use crate::privileged::{assert_wrapper_ran, privileged_command, Caller, PrivateEtc};
use crate::sys::{IFF_NO_PI, IFF_TAP, IFF_VNET_HDR};
use crate::{
    assert_in_test_netns, exit_code, link, wait_until_deadline, Link, PipeReader, CLEAN_PATH,
};

pub use crate::sys::spawn_with_fd;

/// Debian's `qemu-bridge-helper` (package `qemu-system-common`).
pub const DEBIAN_HELPER: &str = "/usr/lib/qemu/qemu-bridge-helper";

/// The descriptor number a [`HelperCall`] gives the helper its socket on (libvirt 9.0 happened
/// to pass 27 in our runs; any number above 2 is valid).
pub const FD_NUMBER: RawFd = 27;

/// Time a [`HelperCall`] waits for the message and for the exit, unless told otherwise.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Debian's `qemu-bridge-helper` as `qemu-system-common` installed it: its path (the diverted
/// one, should a package have diverted it with `dpkg-divert`), checked with [`assert_debian_helper`].
/// Panics if it is not installed or not the file Debian shipped.
pub fn debian_helper() -> PathBuf {
    let out = Command::new("dpkg-divert")
        .args(["--truename", DEBIAN_HELPER])
        .env_clear()
        .env("PATH", CLEAN_PATH)
        .output();
    let path = match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => PathBuf::from(DEBIAN_HELPER),
    };
    assert!(
        path.is_file(),
        "{} not found: install qemu-system-common (scripts/deps.sh does)",
        path.display()
    );
    assert_debian_helper(&path);
    path
}

/// Panics unless `path` (e.g. a setuid copy) has the content Debian's `qemu-system-common`
/// shipped as `/usr/lib/qemu/qemu-bridge-helper` (the MD5 sum dpkg recorded). Guards the tests
/// against a machine where something replaced the helper (a package under test, another test).
pub fn assert_debian_helper(path: &Path) {
    let rel = DEBIAN_HELPER.trim_start_matches('/');
    let want = ["qemu-system-common", "qemu-system-common:amd64"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/var/lib/dpkg/info/{p}.md5sums")).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.split_once("  "))
                .filter(|(_, file)| *file == rel)
                .map(|(sum, _)| sum.to_owned())
                .collect::<Vec<_>>()
        })
        .next()
        .unwrap_or_else(|| {
            panic!("dpkg has no MD5 sum of {DEBIAN_HELPER}: install qemu-system-common")
        });
    let out = Command::new("md5sum")
        .arg(path)
        .env_clear()
        .env("PATH", CLEAN_PATH)
        .output()
        .unwrap_or_else(|e| panic!("cannot run md5sum: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let got = text.split_whitespace().next().unwrap_or("");
    assert_eq!(
        got,
        want,
        "{} is not Debian's qemu-bridge-helper (MD5 {got}, qemu-system-common shipped {want}): \
         something on this machine replaced {DEBIAN_HELPER}; reinstall qemu-system-common",
        path.display()
    );
}

/// How the helper is started: whose command line, in which form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// QEMU's `execv` form: `HELPER --use-vnet --fd=N --br=BR`.
    QemuExec(PathBuf),
    /// QEMU's `sh -c` form, for a `helper=` string holding a space or tab (e.g. the helper's path
    /// followed by arguments of its own): `/bin/sh -c "STRING --use-vnet --fd=N --br=BR"`, where
    /// `--br=BR` is left out if STRING holds `--br=` already, as QEMU does.
    QemuShell(String),
    /// libvirt's form: `HELPER [--use-vnet] --br=BR --fd=N`, stdin and stdout `/dev/null`.
    Libvirt(PathBuf),
}

/// One run of a bridge helper; see the module documentation. Built with [`HelperCall::new`],
/// run with [`HelperCall::run`].
#[derive(Debug, Clone)]
pub struct HelperCall {
    invocation: Invocation,
    bridge: String,
    etc: PathBuf,
    caller: Caller,
    vnet: bool,
    timeout: Duration,
}

impl HelperCall {
    /// The helper of `invocation` asked for a tap on `bridge`, run as `caller` with `etc` bound
    /// over `/etc`. With `--use-vnet` (QEMU always passes it; for [`Invocation::Libvirt`] it means
    /// a virtio NIC): see [`HelperCall::vnet`].
    pub fn new(invocation: Invocation, bridge: &str, etc: &PrivateEtc, caller: &Caller) -> Self {
        HelperCall {
            invocation,
            bridge: bridge.to_owned(),
            etc: etc.path().to_owned(),
            caller: caller.clone(),
            vnet: true,
            timeout: HELPER_TIMEOUT,
        }
    }

    /// Whether `--use-vnet` is passed (default true). QEMU 7.2 always passes it; `false` with a
    /// QEMU form is a command line QEMU never writes, kept for completeness.
    pub fn vnet(mut self, vnet: bool) -> Self {
        self.vnet = vnet;
        self
    }

    /// How long to wait for the message and then for the exit (default [`HELPER_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The helper's command line as its caller writes it (program first).
    pub fn argv(&self) -> Vec<String> {
        let fd = format!("--fd={FD_NUMBER}");
        let br = format!("--br={}", self.bridge);
        let vnet = self.vnet.then_some("--use-vnet");
        match &self.invocation {
            Invocation::QemuExec(helper) => {
                let mut argv = vec![helper.display().to_string()];
                argv.extend(vnet.map(str::to_owned));
                argv.extend([fd, br]);
                argv
            }
            Invocation::QemuShell(helper) => {
                // QEMU: snprintf("%s %s %s %s", helper, "--use-vnet", fd_buf, br_buf), br_buf
                // empty when the helper string has a --br= of its own.
                let br = if helper.contains("--br=") {
                    String::new()
                } else {
                    br
                };
                let command = format!("{helper} {} {fd} {br}", vnet.unwrap_or(""));
                vec!["/bin/sh".to_owned(), "-c".to_owned(), command]
            }
            Invocation::Libvirt(helper) => {
                let mut argv = vec![helper.display().to_string()];
                argv.extend(vnet.map(str::to_owned));
                argv.extend([br, fd]);
                argv
            }
        }
    }

    /// Runs the helper (its environment `PATH=`[`CLEAN_PATH`] alone) and returns what happened.
    /// Panics (killing it) if it neither sends a message nor exits within the timeout, or exits
    /// later than that after sending; panics if the wrapper (unshare, mount, setpriv, env) fails,
    /// so the outcome is always the helper's own.
    pub fn run(&self) -> HelperOutcome {
        assert_in_test_netns("running a bridge helper");
        let argv = self.argv();
        let (mut cmd, wrapped) = privileged_command(&self.etc, &self.caller, &[], &argv);
        let (ours, theirs) = socket_pair();
        cmd.stderr(Stdio::piped());
        match self.invocation {
            Invocation::Libvirt(_) => cmd.stdout(Stdio::null()),
            Invocation::QemuExec(_) | Invocation::QemuShell(_) => cmd.stdout(Stdio::piped()),
        };
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut child = spawn_with_fd(cmd, theirs, FD_NUMBER)
            .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"));
        let stdout = child.stdout.take().map(PipeReader::spawn);
        let stderr = PipeReader::spawn(child.stderr.take().unwrap());

        let message = match recv_message(ours.as_fd(), self.timeout) {
            Ok(m) => m,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "bridge helper {argv:?}: no message and no exit within {:?} ({e}); stderr: {}",
                    self.timeout,
                    stderr.text(Duration::from_secs(2))
                );
            }
        };
        let status = wait_until_deadline(&mut child, deadline).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "bridge helper {argv:?} did not exit within {:?} (after its message {message:?})",
                self.timeout
            )
        });
        let elapsed = started.elapsed();
        let grace = Duration::from_secs(5);
        let outcome = HelperOutcome {
            code: exit_code(status),
            stdout: stdout.map(|s| s.text(grace)).unwrap_or_default(),
            stderr: stderr.text(grace),
            data: message.as_ref().map(|m| m.data.clone()).unwrap_or_default(),
            fds_received: message.as_ref().map_or(0, |m| m.fds.len()),
            tap: message.and_then(|m| m.fds.into_iter().next()).map(|fd| {
                ReceivedTap::from_fd(fd).unwrap_or_else(|e| {
                    panic!("bridge helper {argv:?} sent a descriptor that is not a tap: {e}")
                })
            }),
            argv,
            elapsed,
        };
        assert_wrapper_ran(outcome.code, &outcome.stderr, &outcome, &wrapped);
        outcome
    }
}

/// What one [`HelperCall::run`] observed.
#[derive(Debug)]
pub struct HelperOutcome {
    /// The helper's command line (program first), as its caller wrote it.
    pub argv: Vec<String>,
    /// Exit status; `128 + N` if killed by signal N.
    pub code: i32,
    /// Empty for [`Invocation::Libvirt`] (stdout is `/dev/null` there).
    pub stdout: String,
    pub stderr: String,
    /// The bytes of the one message read from the socket (QEMU and libvirt read one byte); empty
    /// if the helper closed its end without sending.
    pub data: Vec<u8>,
    /// How many descriptors that message carried (QEMU and libvirt take exactly one).
    pub fds_received: usize,
    /// The first descriptor received, identified with `TUNGETIFF`. Keep it to keep the tap; drop
    /// it and the tap (unless persistent) is gone.
    pub tap: Option<ReceivedTap>,
    /// From spawn to exit, wrapper included.
    pub elapsed: Duration,
}

impl HelperOutcome {
    /// Panics unless the helper did what QEMU requires: exit status 0, exactly one byte with
    /// exactly one descriptor, a tap. Returns the tap.
    #[track_caller]
    pub fn expect_tap(&self) -> &ReceivedTap {
        assert_eq!(self.code, 0, "the helper should succeed: {self:#?}");
        assert_eq!(self.data.len(), 1, "exactly one byte: {self:#?}");
        assert_eq!(self.fds_received, 1, "exactly one descriptor: {self:#?}");
        let tap = self.tap.as_ref().expect("checked above");
        assert!(tap.is_tap() && tap.no_pi(), "IFF_TAP | IFF_NO_PI: {tap:#?}");
        tap
    }

    /// Panics unless the helper refused: exit status not 0, no descriptor sent, something on
    /// stderr. Returns stderr.
    #[track_caller]
    pub fn expect_refused(&self) -> &str {
        assert_ne!(self.code, 0, "the helper should fail: {self:#?}");
        assert_eq!(self.fds_received, 0, "no descriptor on failure: {self:#?}");
        assert!(
            !self.stderr.trim().is_empty(),
            "a failing helper should say why on stderr: {self:#?}"
        );
        &self.stderr
    }
}

/// A tap descriptor received from a helper, with what `TUNGETIFF` says about it. The tap (unless
/// persistent) lives as long as this holds the descriptor.
#[derive(Debug)]
pub struct ReceivedTap {
    _fd: OwnedFd,
    name: String,
    flags: i16,
}

impl ReceivedTap {
    /// Asks `fd` for its interface name and tun flags (`TUNGETIFF`); fails for a descriptor that
    /// is not an attached tun/tap.
    pub fn from_fd(fd: OwnedFd) -> io::Result<ReceivedTap> {
        let (name, flags) = crate::sys::tun_get_iff(fd.as_fd())?;
        let name = String::from_utf8(name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Ok(ReceivedTap {
            _fd: fd,
            name,
            flags,
        })
    }

    /// The tap's interface name (in the helper's network namespace), e.g. `tap0`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `IFF_TAP`.
    pub fn is_tap(&self) -> bool {
        self.flags & IFF_TAP != 0
    }

    /// `IFF_NO_PI`.
    pub fn no_pi(&self) -> bool {
        self.flags & IFF_NO_PI != 0
    }

    /// `IFF_VNET_HDR`: what `--use-vnet` asks for.
    pub fn vnet_hdr(&self) -> bool {
        self.flags & IFF_VNET_HDR != 0
    }

    /// The link as `ip -j -d link show` reports it now (test namespace only). Panics if it does
    /// not exist.
    pub fn link(&self) -> Link {
        link(&self.name).unwrap_or_else(|| {
            panic!(
                "tap {} (from TUNGETIFF) is not in the test namespace",
                self.name
            )
        })
    }
}

/// A unix stream socket pair, both ends close-on-exec, as QEMU and libvirt make one for the
/// helper (hand one end over with [`spawn_with_fd`]).
pub fn socket_pair() -> (OwnedFd, OwnedFd) {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap_or_else(|e| panic!("socketpair(AF_UNIX, SOCK_STREAM): {e}"))
}

/// One message read from the helper's socket.
#[derive(Debug)]
pub struct Message {
    /// Its bytes (up to 64).
    pub data: Vec<u8>,
    /// The descriptors of its `SCM_RIGHTS` control messages (close-on-exec here).
    pub fds: Vec<OwnedFd>,
}

/// Reads one message (one `recvmsg`, as QEMU and libvirt do) from `sock`, waiting at most
/// `timeout`: `Ok(None)` if every other holder of the peer end closed it without sending (the
/// helper exited), `Err` (`WouldBlock`) on timeout. Received descriptors are close-on-exec
/// (`MSG_CMSG_CLOEXEC`), so children other threads spawn never inherit a tap.
pub fn recv_message(sock: BorrowedFd<'_>, timeout: Duration) -> io::Result<Option<Message>> {
    let tv = TimeVal::new(
        timeout.as_secs().try_into().unwrap_or(i64::MAX),
        timeout.subsec_micros().into(),
    );
    setsockopt(&sock, sockopt::ReceiveTimeout, &tv).map_err(io::Error::from)?;
    let mut buf = [0u8; 64];
    let mut cmsg = nix::cmsg_space!([RawFd; 8]);
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        };
        let mut fds = Vec::new();
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                fds.extend(raw.into_iter().map(crate::sys::own_received_fd));
            }
        }
        let n = msg.bytes;
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        return Ok(Some(Message {
            data: buf[..n].to_vec(),
            fds,
        }));
    }
}
