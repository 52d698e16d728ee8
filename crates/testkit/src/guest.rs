//! The test guest: the host's newest Debian kernel plus a tiny initramfs (static busybox, the
//! virtio-net and e1000 modules, an `/init` script) that configures `eth0`, pings the host and
//! powers off.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cpio::Cpio;

/// Console markers printed by the guest's `/init`, one per line.
pub mod marker {
    /// `/init` started.
    pub const BOOTED: &str = "GUEST-BOOTED";
    /// `eth0` is up with its address: `GUEST-NET-UP eth0 ADDR mtu N`.
    pub const NET_UP: &str = "GUEST-NET-UP";
    /// No `eth0` appeared, or a module failed to load.
    pub const NET_FAIL: &str = "GUEST-NET-FAIL";
    /// The ping of `ifup_rs.ping=` got an answer.
    pub const PING_OK: &str = "GUEST-PING-OK";
    /// The ping of `ifup_rs.ping=` got no answer in ~20 attempts.
    pub const PING_FAIL: &str = "GUEST-PING-FAIL";
    /// With `ifup_rs.hold=1` ([`crate::QemuOptions::hold`]): printed after the ping, instead of
    /// powering off; the guest then idles until QEMU is stopped from outside.
    pub const HOLD: &str = "GUEST-HOLD";
    /// Printed just before `poweroff -f`.
    pub const POWEROFF: &str = "GUEST-POWEROFF";
}

/// Modules `/init` loads (with their dependencies from `modules.dep`), unless built in: the NIC
/// drivers of [`crate::NicModel`].
const ROOT_MODULES: &[&str] = &["virtio_pci", "virtio_net", "e1000"];

/// Bump when the layout of the image changes without the init script changing.
const IMAGE_FORMAT: u32 = 1;

/// Reads from the kernel command line: `ifup_rs.ip=ADDR/LEN` (IPv4), `ifup_rs.gw=ADDR` (a
/// routed guest: a link route to the host's ADDR and the default route via it),
/// `ifup_rs.ip6=ADDR/LEN`, `ifup_rs.gw6=ADDR` (the IPv6 default route via ADDR, e.g. the tap's
/// link-local address), `ifup_rs.ping=ADDR[,ADDR...]` (each pinged in turn, IPv4 or IPv6) and
/// `ifup_rs.hold=1`.
const INIT_SCRIPT: &str = r#"#!/bin/sh
# /init of the qemu-ifup-rs test guest (written by ifup-testkit). Console markers: GUEST-*.
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "GUEST-BOOTED"
modules_ok=1
while read -r m; do
  insmod "/lib/modules/$m" || { echo "GUEST-NET-FAIL insmod $m"; modules_ok=; }
done < /etc/modules
guest_ip=
gw=
ip6=
gw6=
ping_ip=
hold=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    ifup_rs.ip=*) guest_ip="${arg#*=}" ;;
    ifup_rs.gw=*) gw="${arg#*=}" ;;
    ifup_rs.ip6=*) ip6="${arg#*=}" ;;
    ifup_rs.gw6=*) gw6="${arg#*=}" ;;
    ifup_rs.ping=*) ping_ip="${arg#*=}" ;;
    ifup_rs.hold=1) hold=1 ;;
  esac
done
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do usleep 100000; n=$((n+1)); done
if [ ! -e /sys/class/net/eth0 ]; then
  echo "GUEST-NET-FAIL no eth0"
  ls /sys/class/net
else
  ip link set lo up
  ip link set eth0 up
  [ -n "$guest_ip" ] && ip addr add "$guest_ip" dev eth0
  if [ -n "$gw" ]; then
    ip route add "$gw" dev eth0
    ip route add default via "$gw" dev eth0
  fi
  [ -n "$ip6" ] && ip -6 addr add "$ip6" dev eth0 nodad
  [ -n "$gw6" ] && ip -6 route add default via "$gw6" dev eth0
  echo "GUEST-NET-UP eth0 $guest_ip mtu $(cat /sys/class/net/eth0/mtu)"
  for target in $(echo "$ping_ip" | tr ',' ' '); do
    ok=
    n=0
    while [ $n -lt 20 ]; do
      if ping -c 1 -W 1 "$target"; then ok=1; break; fi
      n=$((n+1))
      sleep 1
    done
    if [ -n "$ok" ]; then echo "GUEST-PING-OK $target"; else echo "GUEST-PING-FAIL $target"; fi
  done
fi
if [ -n "$hold" ]; then
  echo "GUEST-HOLD"
  while :; do sleep 3600; done
fi
echo "GUEST-POWEROFF"
poweroff -f
"#;

/// Guest memory in MiB unless a test asks for more ([`crate::QemuOptions::memory_mib`]).
pub(crate) const GUEST_MEMORY_MIB: u32 = 256;

/// The test guest's kernel command line: the console on the first serial port, no reboot after a
/// panic, no boot messages, then the `ifup_rs.*` keys of [`INIT_SCRIPT`] and any other argument,
/// in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KernelCmdline(Vec<String>);

impl KernelCmdline {
    /// `ifup_rs.ip=CIDR`: the guest's `eth0` address, e.g. `10.0.2.15/24`.
    pub(crate) fn guest_ip(&mut self, cidr: &str) {
        self.arg(&format!("ifup_rs.ip={cidr}"));
    }

    /// `ifup_rs.ping=ADDR[,ADDR…]`: what the guest pings ([`marker::PING_OK`] /
    /// [`marker::PING_FAIL`]).
    pub(crate) fn ping(&mut self, addrs: &str) {
        self.arg(&format!("ifup_rs.ping={addrs}"));
    }

    /// `ifup_rs.hold=1`: the guest idles after its ping ([`marker::HOLD`]) instead of powering
    /// off.
    pub(crate) fn hold(&mut self) {
        self.arg("ifup_rs.hold=1");
    }

    /// Any other argument.
    pub(crate) fn arg(&mut self, arg: &str) {
        self.0.push(arg.to_owned());
    }

    /// The whole command line.
    pub(crate) fn line(&self) -> String {
        std::iter::once("console=ttyS0 panic=-1 quiet")
            .chain(self.0.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The console lines that end the guest's ping of `target` ([`marker::PING_OK`] and
/// [`marker::PING_FAIL`], each followed by the address), or of any target with `None`.
pub(crate) fn ping_verdicts(target: Option<&str>) -> [String; 2] {
    [marker::PING_OK, marker::PING_FAIL].map(|m| match target {
        Some(target) => format!("{m} {target}"),
        None => m.to_owned(),
    })
}

/// Paths of a bootable test guest. Both files are world-readable, so QEMU can run as any user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestImage {
    /// A copy of the host's newest `/boot/vmlinuz-*`.
    pub kernel: PathBuf,
    /// The initramfs (uncompressed cpio newc).
    pub initrd: PathBuf,
}

impl GuestImage {
    /// Returns the guest image cached under `cache_dir` (in tests:
    /// `Path::new(env!("CARGO_TARGET_TMPDIR"))`), building it first if needed. The cache key covers
    /// the kernel, busybox and the init script. Safe to call from parallel tests and processes:
    /// files are written under a temporary name and renamed into place.
    pub fn get(cache_dir: &Path) -> GuestImage {
        let kernel = newest_kernel();
        let release = kernel_release(&kernel);
        let busybox = busybox_path();
        let modules = resolve_modules(&release, ROOT_MODULES);

        let mut h = DefaultHasher::new();
        IMAGE_FORMAT.hash(&mut h);
        INIT_SCRIPT.hash(&mut h);
        hash_files(
            &mut h,
            [kernel.as_path(), busybox.as_path()]
                .into_iter()
                .chain(modules.iter().map(PathBuf::as_path)),
        );
        let dir = cache_dir.join(format!("qemu-ifup-rs-guest-{release}-{:016x}", h.finish()));
        cached_image(cache_dir, &dir, &kernel, || {
            build_initramfs(&busybox, &modules)
        })
    }
}

/// Feeds each file's path, size and modification time to `h`, so that a cache key changes when
/// one of the files does.
pub(crate) fn hash_files<'p>(h: &mut impl Hasher, paths: impl IntoIterator<Item = &'p Path>) {
    for path in paths {
        path.hash(h);
        let meta =
            fs::metadata(path).unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
        (meta.len(), meta.mtime(), meta.mtime_nsec()).hash(h);
    }
}

/// The image in `dir` (a directory of `cache_dir` named after the image's cache key): reused
/// when both its files are there, else written, the kernel a copy of `kernel` and the initramfs
/// what `initrd` returns (called only then). Both directories are made world-readable.
pub(crate) fn cached_image(
    cache_dir: &Path,
    dir: &Path,
    kernel: &Path,
    initrd: impl FnOnce() -> Vec<u8>,
) -> GuestImage {
    let image = GuestImage {
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.cpio"),
    };
    if image.kernel.exists() && image.initrd.exists() {
        return image;
    }

    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    make_world_readable(cache_dir, 0o755);
    make_world_readable(dir, 0o755);
    let kernel_bytes =
        fs::read(kernel).unwrap_or_else(|e| panic!("cannot read {}: {e}", kernel.display()));
    write_atomically(&image.kernel, &kernel_bytes);
    write_atomically(&image.initrd, &initrd());
    image
}

fn make_world_readable(path: &Path, mode: u32) {
    // Best effort: only needed when QEMU runs as another user; fails harmlessly on dirs we
    // don't own.
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
}

fn write_atomically(dest: &Path, data: &[u8]) {
    let tmp = dest.with_extension(format!(
        "tmp.{}.{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut f =
        fs::File::create(&tmp).unwrap_or_else(|e| panic!("cannot create {}: {e}", tmp.display()));
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
    drop(f);
    make_world_readable(&tmp, 0o644);
    fs::rename(&tmp, dest)
        .unwrap_or_else(|e| panic!("cannot rename {} to {}: {e}", tmp.display(), dest.display()));
}

/// The newest `/boot/vmlinuz-*` (by version, not by name) that has a `/lib/modules` directory.
pub(crate) fn newest_kernel() -> PathBuf {
    let missing = "no guest kernel: the QEMU tests boot the host's /boot/vmlinuz-* with its \
                   /lib/modules; install one with `apt-get install linux-image-amd64`";
    let entries = fs::read_dir("/boot").unwrap_or_else(|e| panic!("{missing} (/boot: {e})"));
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
                && Path::new("/lib/modules")
                    .join(kernel_release(p))
                    .join("modules.dep")
                    .exists()
        })
        .max_by(|a, b| version_key(&kernel_release(a)).cmp(&version_key(&kernel_release(b))))
        .unwrap_or_else(|| panic!("{missing}"))
}

pub(crate) fn kernel_release(vmlinuz: &Path) -> String {
    let name = vmlinuz.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.strip_prefix("vmlinuz-").unwrap_or(name).to_owned()
}

/// "6.1.0-10-amd64" < "6.1.0-9-amd64" by name; compare runs of digits as numbers instead.
fn version_key(release: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = release;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            key.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let other = rest.len() - rest.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
            key.push((0, rest[..other].to_owned()));
            rest = &rest[other..];
        }
    }
    key
}

/// The host's busybox, which must be statically linked: the guest has no libc.
pub(crate) fn busybox_path() -> PathBuf {
    let path = ["/usr/bin/busybox", "/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("no busybox for the test guest: `apt-get install busybox-static`")
        });
    let elf = fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        !has_interpreter(&elf),
        "{} is dynamically linked and cannot run in the test guest: \
         `apt-get install busybox-static`",
        path.display()
    );
    path
}

/// Whether a 64-bit little-endian ELF file has a `PT_INTERP` program header (is dynamically
/// linked).
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    assert!(
        elf.starts_with(b"\x7fELF\x02\x01"),
        "busybox is not a 64-bit little-endian ELF file"
    );
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| {
        let at = usize::try_from(phoff)
            .unwrap_or(usize::MAX)
            .saturating_add(i * usize::from(phentsize));
        u32_at(at) == Some(PT_INTERP)
    })
}

/// Paths of the module files to load for `roots`, dependencies first, from `modules.dep`.
/// Built-in modules (`modules.builtin`) are left out.
pub(crate) fn resolve_modules(release: &str, roots: &[&str]) -> Vec<PathBuf> {
    let root = Path::new("/lib/modules").join(release);
    let read = |name: &str| {
        let path = root.join(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    };
    let builtin: BTreeSet<String> = read("modules.builtin").lines().map(module_name).collect();
    // relative path (as in modules.dep) -> relative paths of its dependencies
    let mut requires: HashMap<String, Vec<String>> = HashMap::new();
    // module name -> relative path
    let mut by_name: HashMap<String, String> = HashMap::new();
    for line in read("modules.dep").lines() {
        let Some((path, deps)) = line.split_once(':') else {
            continue;
        };
        requires.insert(
            path.to_owned(),
            deps.split_whitespace().map(str::to_owned).collect(),
        );
        by_name.insert(module_name(path), path.to_owned());
    }

    fn visit(path: &str, requires: &HashMap<String, Vec<String>>, order: &mut Vec<String>) {
        if order.iter().any(|p| p == path) {
            return;
        }
        let deps = requires
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in modules.dep"));
        for dep in deps {
            visit(dep, requires, order);
        }
        order.push(path.to_owned());
    }
    let mut order: Vec<String> = Vec::new();
    for name in roots {
        if builtin.contains(*name) {
            continue;
        }
        let path = by_name.get(*name).unwrap_or_else(|| {
            panic!("kernel {release} has module {name} neither built in nor in modules.dep")
        });
        visit(path, &requires, &mut order);
    }
    order.into_iter().map(|p| root.join(p)).collect()
}

/// `kernel/drivers/net/virtio_net.ko.xz` -> `virtio_net` (modprobe treats `-` and `_` alike).
pub(crate) fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// The module's bytes, decompressed: busybox's `insmod` cannot read zstd, and the kernel here may
/// lack in-kernel decompression.
pub(crate) fn module_bytes(path: &Path) -> Vec<u8> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".ko") {
        return fs::read(path).unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
    } else if name.ends_with(".ko.xz") {
        "xz"
    } else if name.ends_with(".ko.zst") {
        "zstd"
    } else if name.ends_with(".ko.gz") {
        "gzip"
    } else {
        panic!("unknown module compression: {name}");
    };
    let out = Command::new(tool)
        .args(["-d", "-c"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{tool}` to decompress {name}: {e}"));
    assert!(
        out.status.success(),
        "`{tool} -d -c {name}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn build_initramfs(busybox: &Path, modules: &[PathBuf]) -> Vec<u8> {
    base_initramfs(busybox, modules, INIT_SCRIPT).finish()
}

/// The directories of every test guest's initramfs.
pub(crate) const BASE_DIRS: &[&str] = &[
    "bin",
    "sbin",
    "usr",
    "usr/bin",
    "usr/sbin",
    "dev",
    "proc",
    "sys",
    "tmp",
    "etc",
    "lib",
    "lib/modules",
    "root",
];

/// The common part of every test guest's initramfs: the directory skeleton, `/dev/console`,
/// busybox, `/init` and the `modules` (listed in load order in `/etc/modules`).
pub(crate) fn base_initramfs(busybox: &Path, modules: &[PathBuf], init: &str) -> Cpio {
    let mut c = Cpio::default();
    for dir in BASE_DIRS {
        c.dir(dir, if *dir == "tmp" { 0o1777 } else { 0o755 });
    }
    // The kernel opens /dev/console for init's stdio before /init can mount devtmpfs.
    c.char_dev("dev/console", 0o600, 5, 1);
    c.char_dev("dev/null", 0o666, 1, 3);
    let bb = fs::read(busybox).unwrap_or_else(|e| panic!("cannot read {}: {e}", busybox.display()));
    c.file("bin/busybox", 0o755, &bb);
    c.symlink("bin/sh", "busybox");
    c.file("init", 0o755, init.as_bytes());

    let mut list = String::new();
    for module in modules {
        let file = format!("{}.ko", module_name(&module.to_string_lossy()));
        c.file(&format!("lib/modules/{file}"), 0o644, &module_bytes(module));
        list.push_str(&file);
        list.push('\n');
    }
    c.file("etc/modules", 0o644, list.as_bytes());
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_compare_numerically() {
        assert!(version_key("6.1.0-10-amd64") > version_key("6.1.0-9-amd64"));
        assert!(version_key("6.10.0-1-amd64") > version_key("6.9.12-1-amd64"));
    }

    #[test]
    fn static_busybox_has_no_interpreter() {
        let bb = fs::read(busybox_path()).unwrap();
        assert!(!has_interpreter(&bb));
        let dynamic = fs::read("/bin/sh").unwrap();
        assert!(
            has_interpreter(&dynamic),
            "/bin/sh is dynamically linked on Debian"
        );
    }

    #[test]
    fn module_names() {
        assert_eq!(
            module_name("kernel/drivers/net/virtio_net.ko"),
            "virtio_net"
        );
        assert_eq!(module_name("kernel/net/core/failover.ko.zst"), "failover");
        assert_eq!(module_name("kernel/x/snd-hda.ko.xz"), "snd_hda");
    }
}
