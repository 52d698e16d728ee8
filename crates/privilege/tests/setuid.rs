//! Real-kernel tests of the privilege drop, through copies of `examples/drop_probe` installed
//! setuid root, with file capabilities, or plain, and run as an unprivileged uid.
//!
//! Needs root (to chown/chmod/setcap the copies and to start them as another uid), `setcap`
//! (Debian: libcap2-bin) and `setpriv` (util-linux). Nothing here changes the test process's own
//! credentials: every change happens in the probe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use ifup_testkit::privileged::suitable_base;

const USER: u32 = 12345;
const NET_ADMIN: u64 = 1 << 12;
const NO_NET_ADMIN_MSG: &str = "the helper was started with privilege but without CAP_NET_ADMIN";

/// Copying an executable and starting processes from parallel test threads races: a child forked
/// by one thread can inherit another thread's still-open write descriptor of a fresh copy, and
/// exec of that copy then fails with ETXTBSY. Each test holds this lock for its whole body (its
/// [`Scratch`] holds it).
static SERIAL: Mutex<()> = Mutex::new(());

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root: they chown, chmod 4755 and setcap copies of the probe and run \
         them as uid {USER} (run `cargo test -p ifup-privilege` as root)"
    );
    let me = ifup_privilege::proc_state().unwrap();
    assert!(
        !me.no_new_privs,
        "the test runner has no-new-privileges set, so setuid and file capabilities cannot take \
         effect: run the tests outside such a sandbox"
    );
}

/// `target/<profile>/examples/drop_probe`, next to `target/<profile>/deps/<this test>`.
fn probe() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("examples").join("drop_probe"))
        .unwrap();
    assert!(
        path.is_file(),
        "{} is missing: build the examples (`cargo test -p ifup-privilege` does, or \
         `cargo build -p ifup-privilege --examples`)",
        path.display()
    );
    path
}

/// A fresh directory for one test's copies, removed on drop. Made once root is checked, and
/// holds [`SERIAL`] while it lives.
struct Scratch {
    dir: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl Scratch {
    /// Under `CARGO_TARGET_TMPDIR`, or a fallback if that cannot hold a setuid binary run by
    /// uid `USER` (see [`suitable_base`]).
    fn new(test: &str) -> Scratch {
        require_root();
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let base = suitable_base(Path::new(env!("CARGO_TARGET_TMPDIR")));
        let dir = base.join(format!("privilege-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch {
            dir,
            _serial: serial,
        }
    }

    /// Copies the probe to `name`, owned by root, with `mode` (set after the chown, which would
    /// clear a setuid bit).
    fn install(&self, name: &str, mode: u32) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::copy(probe(), &path).unwrap();
        std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, mode);
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn setcap(path: &Path, caps: &str) {
    let out = Command::new("setcap")
        .arg(caps)
        .arg(path)
        .output()
        .expect("setcap not found: install libcap2-bin");
    assert!(
        out.status.success(),
        "setcap {caps} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Everything the probe printed, `key=value` per line.
#[derive(Debug)]
struct Report(HashMap<String, String>);

impl Report {
    fn run(cmd: &mut Command) -> Report {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{cmd:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let map = stdout
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Report(map)
    }

    fn get(&self, key: &str) -> &str {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("probe printed no {key}: {self:#?}"))
    }

    fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            "1" => true,
            "0" => false,
            other => panic!("{key}={other}"),
        }
    }

    fn state(&self, key: &str) -> State {
        State::parse(self.get(key))
    }
}

/// A parsed `ProcState::summary()` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    uids: [u32; 3],
    gids: [u32; 3],
    eff: u64,
    prm: u64,
    inh: u64,
    bnd: u64,
    amb: u64,
    nnp: bool,
}

impl State {
    fn parse(line: &str) -> State {
        let kv: HashMap<&str, &str> = line
            .split_whitespace()
            .map(|tok| tok.split_once('=').unwrap_or_else(|| panic!("{line}")))
            .collect();
        let ids = |k: &str| -> [u32; 3] {
            let v: Vec<u32> = kv[k].split('/').map(|n| n.parse().unwrap()).collect();
            v.try_into().unwrap()
        };
        let mask = |k: &str| u64::from_str_radix(kv[k], 16).unwrap();
        State {
            uids: ids("uid"),
            gids: ids("gid"),
            eff: mask("cap_eff"),
            prm: mask("cap_prm"),
            inh: mask("cap_inh"),
            bnd: mask("cap_bnd"),
            amb: mask("cap_amb"),
            nnp: kv["no_new_privs"] == "1",
        }
    }
}

/// `setpriv` starting `probe` as uid and gid `USER`, no supplementary groups, with `option`.
fn setpriv_as_user(option: &str, probe: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={USER}"))
        .arg(format!("--regid={USER}"))
        .arg("--clear-groups")
        .arg(option)
        .arg("--")
        .arg(probe);
    cmd
}

fn test_process_bounding_set() -> u64 {
    ifup_privilege::proc_state().unwrap().cap_bnd
}

#[test]
fn setuid_root_copy_drops_to_the_caller() {
    let scratch = Scratch::new("suid");
    let probe = scratch.install("probe", 0o4755);

    let r = Report::run(
        Command::new(&probe)
            .uid(USER)
            .gid(USER)
            .env("QEMU_IFUP_CONFIG", "/tmp/evil.conf"),
    );
    assert!(r.flag("gained_privilege"));
    assert_eq!(r.get("start"), "Privileged { net_admin: true }");
    assert_ne!(r.get("env_before"), "0");
    assert_eq!(r.get("clear_environment"), "ok");
    assert_eq!(r.get("env_after"), "0");

    let before = r.state("before");
    assert_eq!(
        before.uids,
        [USER, 0, 0],
        "setuid root: real uid is the caller's"
    );
    assert_ne!(before.prm & NET_ADMIN, 0);
    assert_eq!(r.get("real_ids"), format!("uid={USER} gid={USER} groups="));

    assert_eq!(r.get("drop"), "ok");
    let after = r.state("after");
    assert_eq!(
        after,
        State {
            uids: [USER; 3],
            gids: [USER; 3],
            eff: NET_ADMIN,
            prm: NET_ADMIN,
            inh: 0,
            bnd: NET_ADMIN,
            amb: 0,
            nnp: true,
        }
    );
    assert!(r.flag("has_net_admin"));
}

#[test]
fn setuid_root_copy_keeps_supplementary_groups() {
    let scratch = Scratch::new("groups");
    let probe = scratch.install("probe", 0o4755);

    let r = Report::run(
        Command::new("setpriv")
            .arg(format!("--reuid={USER}"))
            .arg(format!("--regid={}", USER + 1))
            .arg(format!("--groups={},{}", USER + 2, USER + 3))
            .arg("--")
            .arg(&probe),
    );
    assert_eq!(r.get("start"), "Privileged { net_admin: true }");
    let groups = format!(
        "uid={USER} gid={} groups={},{}",
        USER + 1,
        USER + 2,
        USER + 3
    );
    assert_eq!(r.get("real_ids"), groups);
    assert_eq!(r.get("drop"), "ok");
    assert_eq!(r.get("real_ids_after"), groups);
    let after = r.state("after");
    assert_eq!(after.uids, [USER; 3]);
    assert_eq!(after.gids, [USER + 1; 3]);
    assert_eq!(
        (after.eff, after.prm, after.bnd),
        (NET_ADMIN, NET_ADMIN, NET_ADMIN)
    );
}

#[test]
fn file_caps_copy_keeps_only_net_admin() {
    let scratch = Scratch::new("fcaps");
    let probe = scratch.install("probe", 0o755);
    setcap(&probe, "cap_net_admin+ep");

    let r = Report::run(Command::new(&probe).uid(USER).gid(USER));
    assert!(r.flag("gained_privilege"));
    assert_eq!(r.get("start"), "Privileged { net_admin: true }");
    let before = r.state("before");
    assert_eq!(before.uids, [USER; 3]);
    assert_eq!((before.eff, before.prm), (NET_ADMIN, NET_ADMIN));

    assert_eq!(r.get("drop"), "ok");
    let after = r.state("after");
    assert_eq!(
        after,
        State {
            uids: [USER; 3],
            gids: [USER; 3],
            eff: NET_ADMIN,
            prm: NET_ADMIN,
            inh: 0,
            // No CAP_SETPCAP in this mode: the bounding set stays as inherited.
            bnd: test_process_bounding_set(),
            amb: 0,
            nnp: true,
        }
    );
    assert!(r.flag("has_net_admin"));
}

#[test]
fn plain_copy_run_by_a_user_gains_nothing() {
    let scratch = Scratch::new("plain-user");
    let probe = scratch.install("probe", 0o755);

    let r = Report::run(Command::new(&probe).uid(USER).gid(USER));
    assert!(!r.flag("gained_privilege"));
    assert_eq!(r.get("start"), "Unprivileged");
    assert_eq!(r.get("why_unprivileged"), "none");
    assert!(r.get("drop").contains(NO_NET_ADMIN_MSG), "{r:#?}");
    // Refused before changing anything.
    assert_eq!(r.state("after"), r.state("before"));
    assert_eq!(r.state("after").prm, 0);
    assert!(!r.flag("has_net_admin"));
}

#[test]
fn plain_copy_run_by_root_gains_nothing() {
    let scratch = Scratch::new("plain-root");
    let probe = scratch.install("probe", 0o755);

    let r = Report::run(&mut Command::new(&probe));
    assert!(!r.flag("gained_privilege"));
    assert_eq!(r.get("start"), "Root");
    // Not privileged mode, so a helper would not drop; if it did, root keeps uid 0 and only
    // CAP_NET_ADMIN.
    assert_eq!(r.get("drop"), "ok");
    let after = r.state("after");
    assert_eq!(after.uids, [0; 3]);
    assert_eq!(
        (after.eff, after.prm, after.bnd),
        (NET_ADMIN, NET_ADMIN, NET_ADMIN)
    );
    assert!(after.nnp);
}

#[test]
fn setuid_copy_run_by_root_is_not_privileged_mode() {
    let scratch = Scratch::new("suid-root");
    let probe = scratch.install("probe", 0o4755);

    let r = Report::run(&mut Command::new(&probe));
    // Root executing a setuid-root file gains nothing, and the kernel does not set AT_SECURE.
    assert!(!r.flag("gained_privilege"));
    assert_eq!(r.get("start"), "Root");
}

#[test]
fn setuid_copy_without_net_admin_in_the_bounding_set_fails_closed() {
    let scratch = Scratch::new("nobnd");
    let probe = scratch.install("probe", 0o4755);

    let r = Report::run(&mut setpriv_as_user("--bounding-set=-net_admin", &probe));
    assert!(r.flag("gained_privilege"));
    assert_eq!(r.get("start"), "Privileged { net_admin: false }");
    assert!(r.get("drop").contains(NO_NET_ADMIN_MSG), "{r:#?}");
    // Nothing was changed before the refusal: the caller must exit.
    assert_eq!(r.state("after"), r.state("before"));
    assert_eq!(r.state("after").uids, [USER, 0, 0]);
}

#[test]
fn setuid_copy_under_no_new_privs_gains_nothing() {
    let scratch = Scratch::new("nnp");
    let probe = scratch.install("probe", 0o4755);

    // No AT_SECURE at all: the kernel did not even switch the effective uid.
    let r = Report::run(&mut setpriv_as_user("--no-new-privs", &probe));
    assert!(!r.flag("gained_privilege"));
    assert_eq!(r.get("start"), "Unprivileged");
    assert_eq!(r.state("before").uids, [USER; 3]);
    assert!(r.get("drop").contains(NO_NET_ADMIN_MSG), "{r:#?}");
    // The reason an error message gives.
    assert_eq!(r.get("why_unprivileged"), "NoNewPrivileges");
}

#[test]
fn file_caps_copy_under_no_new_privs_gets_no_capability() {
    let scratch = Scratch::new("fcaps-nnp");
    let probe = scratch.install("probe", 0o755);
    setcap(&probe, "cap_net_admin+ep");

    // AT_SECURE is set, the capability is withheld: privileged mode with nothing to keep. (The
    // kernel limits what an exec under no-new-privs gains to what the parent already had, so
    // the parent must be the user's own process, not root's setpriv.)
    let r = Report::run(
        setpriv_as_user("--inh-caps=-all", Path::new("setpriv"))
            .args(["--no-new-privs".as_ref(), probe.as_os_str()]),
    );
    assert!(r.flag("gained_privilege"));
    assert_eq!(r.get("start"), "Privileged { net_admin: false }");
    assert_eq!(r.state("before").prm, 0);
    assert_eq!(r.get("why_unprivileged"), "NoNewPrivileges");
    // Without --become-caller the probe tries drop_to_caller, which refuses.
    assert!(r.get("drop").contains(NO_NET_ADMIN_MSG), "{r:#?}");

    let r = Report::run(
        setpriv_as_user("--inh-caps=-all", Path::new("setpriv")).args([
            "--no-new-privs".as_ref(),
            probe.as_os_str(),
            "--become-caller".as_ref(),
        ]),
    );
    assert_eq!(r.get("drop"), "ok");
    let after = r.state("after");
    assert_eq!((after.uids, after.gids), ([USER; 3], [USER; 3]));
    assert_eq!((after.eff, after.prm, after.inh, after.amb), (0, 0, 0, 0));
    assert!(after.nnp);
}

#[test]
fn setuid_copy_owned_by_another_user_becomes_the_caller() {
    let scratch = Scratch::new("suid-other");
    let probe = scratch.install("probe", 0o4755);
    // Owned by uid USER + 7 (chown clears the setuid bit: set it again).
    std::os::unix::fs::chown(&probe, Some(USER + 7), None).unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o4755)).unwrap();

    let r = Report::run(setpriv_as_user("--inh-caps=-all", &probe).arg("--become-caller"));
    assert!(r.flag("gained_privilege"));
    assert_eq!(r.get("start"), "Privileged { net_admin: false }");
    assert_eq!(r.state("before").uids, [USER, USER + 7, USER + 7]);
    assert_eq!(r.get("why_unprivileged"), "WithoutNetAdmin");
    assert_eq!(r.get("drop"), "ok");
    assert_eq!(r.state("after").uids, [USER; 3]);
}

#[test]
fn drop_to_caller_refuses_ids_that_are_not_the_callers() {
    let scratch = Scratch::new("other-ids");
    let probe = scratch.install("probe", 0o4755);

    // A single-threaded process (the probe), so the guard itself is what refuses.
    let r = Report::run(Command::new(&probe).arg("--other-ids").uid(USER).gid(USER));
    assert_eq!(r.get("start"), "Privileged { net_admin: true }");
    assert_eq!(
        r.get("drop"),
        format!(
            "error: refusing to drop privilege to uid {} gid {USER}: the caller is uid {USER} gid {USER}",
            USER + 1
        )
    );
    // Nothing changed: still setuid root, every capability.
    assert_eq!(r.state("after"), r.state("before"));
    assert_eq!(r.state("after").uids, [USER, 0, 0]);
}

#[test]
fn every_capability_can_be_dropped_after_the_drop_to_the_caller() {
    for (name, mode, caps) in [
        ("suid", 0o4755, None),
        ("fcaps", 0o755, Some("cap_net_admin+ep")),
    ] {
        let scratch = Scratch::new(&format!("drop-all-{name}"));
        let probe = scratch.install("probe", mode);
        if let Some(caps) = caps {
            setcap(&probe, caps);
        }
        let r = Report::run(Command::new(&probe).arg("--drop-all").uid(USER).gid(USER));
        assert_eq!(r.get("drop"), "ok", "{name}");
        assert_eq!(r.get("drop_all"), "ok", "{name}");
        let after = r.state("after");
        assert_eq!(
            (after.eff, after.prm, after.inh, after.amb),
            (0, 0, 0, 0),
            "{name}"
        );
        assert_eq!(after.uids, [USER; 3]);
        assert!(!r.flag("has_net_admin"));
    }
}

#[test]
fn environment_entries_std_cannot_name_are_cleared() {
    let scratch = Scratch::new("env");
    let probe = scratch.install("probe", 0o4755);

    // `=X=1` has an empty name: std::env::remove_var("=X") would panic. env(1) puts it there.
    let r = Report::run(
        Command::new("env")
            .arg("-i")
            .arg("=X=1")
            .arg("QEMU_IFUP_CONFIG=/tmp/evil.conf")
            .arg(&probe)
            .uid(USER)
            .gid(USER),
    );
    assert_eq!(r.get("env_before"), "2");
    assert_eq!(r.get("env_after"), "0");
    assert_eq!(r.get("drop"), "ok");
}
