//! The testkit's own checks: namespace isolation and `ip -j` parsing. Needs root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ifup_testkit::*;

#[test]
fn netns_is_fresh_per_test_and_left_on_drop() {
    let host_ns = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    {
        let _ns = Netns::new();
        assert_ne!(
            std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
            host_ns
        );
        let names: Vec<String> = links().into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["lo"]);
        assert!(expect_link("lo").up, "Netns::new brings lo up");
        add_bridge("br0", None);
    }
    assert_eq!(
        std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
        host_ns
    );
}

#[test]
#[should_panic(expected = "call `let _ns = ifup_testkit::Netns::new();` first")]
fn helpers_refuse_the_host_namespace() {
    link("lo");
}

#[test]
fn taps_tuns_veths_and_bridges_parse() {
    let _ns = Netns::new();
    add_bridge("br0", Some(1400));
    // uid 0 / gid 0 resolve to names ("root"), 4242 does not: both spellings of `ip -j`.
    add_tap("tap-owned", Some(0), Some(4242));
    add_tap("tap-plain", None, None);
    add_tun("tun0");
    add_veth("va", "vb");
    set_mtu("tap-owned", 1400);
    set_master("tap-owned", "br0");
    set_up("tap-owned");

    let br = expect_link("br0");
    assert_eq!(
        (br.kind.as_deref(), br.mtu, br.up),
        (Some("bridge"), 1400, true)
    );
    assert_eq!(br.tun, None);

    let tap = expect_link("tap-owned");
    assert_eq!(tap.kind.as_deref(), Some("tun"));
    assert_eq!(tap.master.as_deref(), Some("br0"));
    assert!(tap.up && tap.mtu == 1400 && tap.address.is_some());
    let info = tap.tun.clone().unwrap();
    assert!(info.tap && info.persist && !info.multi_queue);
    assert_eq!((info.owner, info.group), (Some(0), Some(4242)));
    let port = tap.bridge_port.unwrap();
    assert!(!port.isolated && !port.hairpin && port.learning && port.flood);

    let plain = expect_link("tap-plain").tun.unwrap();
    assert_eq!((plain.tap, plain.owner, plain.group), (true, None, None));

    let tun = expect_link("tun0");
    assert_eq!(tun.address, None);
    assert!(!tun.tun.unwrap().tap);

    let veth = expect_link("va");
    assert_eq!(
        (veth.kind.as_deref(), veth.tun, veth.up),
        (Some("veth"), None, false)
    );

    set_nomaster("tap-owned");
    set_down("tap-owned");
    let tap = expect_link("tap-owned");
    assert_eq!((tap.master, tap.up, tap.bridge_port), (None, false, None));
    del_link("tap-owned");
    assert_eq!(link("tap-owned"), None);
}

#[test]
fn default_route_on_a_bridge_without_carrier() {
    let _ns = Netns::new();
    add_bridge_with_default_route("br0", "10.0.2.1/24");
    let route = ip(&["route", "show", "default"]);
    assert!(route.contains("dev br0"), "{route}");
}

#[test]
fn run_clears_the_environment() {
    let out = run(
        std::path::Path::new("/usr/bin/env"),
        &[],
        &[("QEMU_IFUP_CONFIG", "/x")],
    );
    out.assert_success();
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "QEMU_IFUP_CONFIG=/x"]
    );

    let out = run(std::path::Path::new("/bin/sh"), &["-c", "exit 3"], &[]);
    assert_eq!(out.code, 3);
    let out = run_as(
        std::path::Path::new("/usr/bin/id"),
        &["-u"],
        &[],
        Creds {
            uid: 65534,
            gid: 65534,
        },
    );
    assert_eq!(out.assert_success().stdout.trim(), "65534");
}

// ---------------------------------------------------------------------------------------------
// The bridge-helper harness and the private libvirt daemons.

fn tmp() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// Executable scripts other uids can run, in a directory removed on drop.
struct Scripts(std::path::PathBuf);

impl Scripts {
    fn new(test: &str) -> Scripts {
        use std::os::unix::fs::PermissionsExt;
        let dir = privileged::suitable_base(tmp())
            .join(format!("fixture-scripts-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scripts(dir)
    }

    /// Script `name` with `body`.
    fn script(&self, name: &str, body: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        // Installed by a child, as privileged.rs explains: no ETXTBSY from a descriptor of ours.
        let src = self.0.join(format!(".{name}.src"));
        std::fs::write(&src, format!("#!/bin/sh\n{body}\n")).unwrap();
        let st = std::process::Command::new("install")
            .args(["-m", "0755"])
            .arg(&src)
            .arg(&path)
            .status()
            .unwrap();
        assert!(st.success());
        path
    }
}

impl Drop for Scripts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The harness hands the helper its socket as descriptor N in QEMU's and libvirt's argument
/// orders, runs it as the caller, and reports exit status, stderr and "no descriptor".
#[test]
fn helper_call_argv_caller_and_failure() {
    use bridge_helper::{HelperCall, Invocation};
    let _ns = Netns::new();
    let etc = privileged::PrivateEtc::new(tmp(), "fixture-helper-call");
    // Prints its argv, ids and what descriptor 27 is to stderr, then fails.
    let scripts = Scripts::new("helper-call");
    let fake = scripts.script(
        "fake-helper",
        r#"echo "argv: $*" >&2; echo "ids: $(id -u) $(id -g) $(id -G)" >&2
readlink /proc/$$/fd/27 | sed 's/:.*//;s/^/fd27: /' >&2; echo out; exit 3"#,
    );
    let caller = privileged::Caller::new(12360, 12361).with_groups(&[12362]);
    let cases = [
        (
            Invocation::QemuExec(fake.clone()),
            true,
            "--use-vnet --fd=27 --br=br9",
        ),
        (
            Invocation::Libvirt(fake.clone()),
            true,
            "--use-vnet --br=br9 --fd=27",
        ),
        (Invocation::Libvirt(fake.clone()), false, "--br=br9 --fd=27"),
        (
            Invocation::QemuShell(format!("{} --br=brX", fake.display())),
            true,
            "--br=brX --use-vnet --fd=27",
        ),
    ];
    for (inv, vnet, want) in cases {
        let libvirt = matches!(inv, Invocation::Libvirt(_));
        let out = HelperCall::new(inv, "br9", &etc, &caller).vnet(vnet).run();
        assert_eq!(out.code, 3, "{out:#?}");
        assert_eq!(
            out.expect_refused(),
            format!("argv: {want}\nids: 12360 12361 12361 12362\nfd27: socket\n")
        );
        assert_eq!(out.stdout, if libvirt { "" } else { "out\n" }, "{out:#?}");
        assert!(out.data.is_empty() && out.tap.is_none());
    }
}

#[test]
#[should_panic(expected = "no message and no exit within")]
fn helper_call_times_out_loudly() {
    use bridge_helper::{HelperCall, Invocation};
    let _ns = Netns::new();
    let etc = privileged::PrivateEtc::new(tmp(), "fixture-helper-timeout");
    let scripts = Scripts::new("helper-timeout");
    let hang = scripts.script("hanging-helper", "exec sleep 60");
    HelperCall::new(
        Invocation::QemuExec(hang),
        "br0",
        &etc,
        &privileged::Caller::new(12360, 12360),
    )
    .timeout(std::time::Duration::from_millis(500))
    .run();
}

/// Starts a private libvirtd with `start`, checks what every instance must be (libvirtd runs as
/// `uid`, in mount and pid namespaces of its own, in the test's network namespace, with no
/// domain), then `checks` on it and libvirtd's pid; then panics on purpose, and checks that
/// dropping the instance while unwinding leaves no process in its pid namespace.
fn libvirtd_is_private_and_stops_on_drop(
    start: impl FnOnce() -> libvirt::Libvirtd + std::panic::UnwindSafe,
    uid: u32,
    checks: impl FnOnce(&libvirt::Libvirtd, &str) + std::panic::UnwindSafe,
) {
    let ns = |pid: &str, kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
    let seen = std::sync::Mutex::new((0u32, std::path::PathBuf::new()));
    let result = std::panic::catch_unwind(|| {
        let lv = start();
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", lv.init_pid())).unwrap();
        let libvirtd = children.split_whitespace().next().unwrap();
        *seen.lock().unwrap() = (lv.init_pid(), ns(libvirtd, "pid"));
        let status = std::fs::read_to_string(format!("/proc/{libvirtd}/status")).unwrap();
        let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert_eq!(
            uids.split_whitespace().nth(1),
            Some(uid.to_string().as_str()),
            "{uids}"
        );
        assert_ne!(ns(libvirtd, "mnt"), ns("self", "mnt"));
        assert_ne!(ns(libvirtd, "pid"), ns("self", "pid"));
        assert_eq!(
            ns(libvirtd, "net"),
            std::fs::read_link("/proc/thread-self/ns/net").unwrap()
        );
        assert_eq!(lv.running(), Vec::<String>::new());
        checks(&lv, libvirtd);
        panic!("on purpose");
    });
    assert!(result.is_err());
    let (init, pid_ns) = seen.into_inner().unwrap();
    assert_ne!(init, 0);
    assert!(
        !std::path::Path::new(&format!("/proc/{init}")).exists(),
        "the instance's init still runs"
    );
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path().join("ns/pid")).ok().as_ref() == Some(&pid_ns))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        Vec::<String>::new(),
        "processes of the instance's pid namespace are left"
    );
}

/// The session's libvirtd runs as the user, with the user and the ACL only in its namespace.
#[test]
fn libvirt_session_is_private_and_stops_on_drop() {
    use libvirt::{Libvirtd, SessionConfig};
    let _ns = Netns::new();
    const UID: u32 = 12363;
    let config = SessionConfig::new(UID, std::path::Path::new("/nonexistent/helper"))
        .bridge_conf("allow br7\n");
    libvirtd_is_private_and_stops_on_drop(
        || Libvirtd::session(config),
        UID,
        |lv, _| {
            assert!(lv
                .read("/etc/passwd")
                .unwrap()
                .contains("lvtest:x:12363:12363:"));
            assert!(!std::fs::read_to_string("/etc/passwd")
                .unwrap()
                .contains("lvtest:"));
            assert_eq!(lv.read("/etc/qemu/bridge.conf").unwrap(), "allow br7\n");
            let conf = lv.read("/home/lvtest/.config/libvirt/qemu.conf").unwrap();
            assert!(
                conf.contains("bridge_helper = \"/nonexistent/helper\""),
                "{conf}"
            );
        },
    );
}

/// The system instance's libvirtd runs as root with the environment it was given; the helpers
/// in `/usr/libexec`, `/etc/qemu-ifup-rs.conf` and libvirt's `qemu.conf` exist only in its
/// namespace.
#[test]
fn libvirt_system_is_private_and_stops_on_drop() {
    use libvirt::{Libvirtd, SystemConfig};
    let _ns = Netns::new();
    // Stand-ins for the binaries under test: they are only copied.
    let (up, down) = (
        std::path::Path::new("/bin/true"),
        std::path::Path::new("/bin/false"),
    );
    let config = SystemConfig::new(up, down, "tap vm-* bridge br7\n").env("IFUP_TESTKIT", "x y");
    let host = |path: &str| std::fs::read(path).ok();
    let before = [
        "/usr/libexec/qemu-ifup-rs",
        "/usr/libexec/qemu-ifdown-rs",
        "/etc/qemu-ifup-rs.conf",
        "/etc/libvirt/qemu.conf",
    ]
    .map(|p| (p, host(p)));
    libvirtd_is_private_and_stops_on_drop(
        || Libvirtd::system(config),
        0,
        |lv, libvirtd| {
            let inside = |path: &str| std::fs::read(lv.path_in_ns(path)).unwrap();
            assert_eq!(
                inside("/usr/libexec/qemu-ifup-rs"),
                std::fs::read(up).unwrap()
            );
            assert_eq!(
                inside("/usr/libexec/qemu-ifdown-rs"),
                std::fs::read(down).unwrap()
            );
            assert_eq!(
                lv.read("/etc/qemu-ifup-rs.conf").unwrap(),
                "tap vm-* bridge br7\n"
            );
            let conf = lv.read("/etc/libvirt/qemu.conf").unwrap();
            assert!(conf.contains("user = \"root\""), "{conf}");
            for (path, text) in &before {
                assert_eq!(&host(path), text, "{path} changed on the host");
            }
            let environ = std::fs::read(format!("/proc/{libvirtd}/environ")).unwrap();
            let mut environ: Vec<String> = environ
                .split(|&b| b == 0)
                .filter(|v| !v.is_empty())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            environ.sort();
            assert_eq!(
                environ,
                [
                    "HOME=/root",
                    "IFUP_TESTKIT=x y",
                    &format!("PATH={CLEAN_PATH}"),
                ]
            );
        },
    );
}
