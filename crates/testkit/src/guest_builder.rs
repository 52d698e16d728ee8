//! Custom test guests: the same Debian kernel and busybox as [`GuestImage::get`], with the kernel
//! modules, host programs (with their shared libraries), files and `/init` body a test asks for.
//!
//! Used to run tests under a kernel that has what the host's lacks (bridge VLAN filtering): the
//! test copies its own executable and the binaries under test into the guest at their host paths,
//! so `env!("CARGO_BIN_EXE_…")` and `std::env::current_exe()` mean the same file inside.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::guest::{
    base_initramfs, busybox_path, cached_image, hash_files, kernel_release, newest_kernel,
    resolve_modules, BASE_DIRS,
};
use crate::GuestImage;

/// Bump when the layout of custom images changes.
const FORMAT: u32 = 1;

/// Runs before the body: busybox applets, `/proc`, `/sys`, `/dev`, the modules (in dependency
/// order), then `GUEST-BOOTED`. `PATH` puts `/usr/sbin` (where programs added at their Debian
/// paths live, e.g. iproute2's `ip`) before busybox's `/sbin` applets.
const INIT_PRELUDE: &str = r#"#!/bin/sh
# /init of a custom qemu-ifup-rs test guest (written by ifup-testkit).
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "GUEST-BOOTED"
while read -r m; do
  insmod "/lib/modules/$m" || echo "GUEST-MODULE-FAIL $m"
done < /etc/modules
"#;

/// Runs after the body.
const INIT_EPILOGUE: &str = r#"
echo "GUEST-POWEROFF"
poweroff -f
"#;

/// Builder for a custom guest image; see the module documentation.
#[derive(Debug, Clone)]
pub struct GuestBuilder {
    name: String,
    modules: Vec<String>,
    /// (host path, guest path)
    programs: Vec<(PathBuf, String)>,
    /// (guest path, mode, contents)
    files: Vec<(String, u32, Vec<u8>)>,
    body: String,
}

impl GuestBuilder {
    /// A guest named `name` (names the cache directory; one image per name is kept).
    pub fn new(name: &str) -> GuestBuilder {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "guest names are [A-Za-z0-9-]+: {name:?}"
        );
        GuestBuilder {
            name: name.to_owned(),
            modules: Vec::new(),
            programs: Vec::new(),
            files: Vec::new(),
            body: String::new(),
        }
    }

    /// Loads kernel module `name` (and what it depends on) at boot, unless it is built in.
    pub fn module(mut self, name: &str) -> GuestBuilder {
        self.modules.push(name.to_owned());
        self
    }

    /// Copies the host program `host` to `guest` (an absolute path), with every shared library
    /// it needs (found with `ldd`) at the same paths as on the host, dynamic loader included.
    pub fn program(mut self, host: impl AsRef<Path>, guest: &str) -> GuestBuilder {
        assert!(
            guest.starts_with('/'),
            "guest paths are absolute: {guest:?}"
        );
        self.programs
            .push((host.as_ref().to_owned(), guest.to_owned()));
        self
    }

    /// Adds a file with `contents` at `guest` (an absolute path).
    pub fn file(mut self, guest: &str, mode: u32, contents: &[u8]) -> GuestBuilder {
        assert!(
            guest.starts_with('/'),
            "guest paths are absolute: {guest:?}"
        );
        self.files.push((guest.to_owned(), mode, contents.to_vec()));
        self
    }

    /// Shell commands for `/init`, run after the prelude (busybox, mounts, modules, the
    /// `GUEST-BOOTED` marker) and followed by `GUEST-POWEROFF` and `poweroff -f`. The shell is
    /// Debian's static busybox, which runs its own applets before `PATH` (`ip` is busybox's
    /// `ip` there): call added programs by their full path.
    pub fn init(mut self, body: &str) -> GuestBuilder {
        self.body = body.to_owned();
        self
    }

    /// Builds the image under `cache_dir` (or reuses it when nothing it is made of changed) and
    /// returns its paths. Older images of the same name are removed.
    pub fn build(&self, cache_dir: &Path) -> GuestImage {
        let kernel = newest_kernel();
        let release = kernel_release(&kernel);
        let busybox = busybox_path();
        let roots: Vec<&str> = self.modules.iter().map(String::as_str).collect();
        let modules = resolve_modules(&release, &roots);
        let init = format!("{INIT_PRELUDE}{}{INIT_EPILOGUE}", self.body);
        // Every program and each library it needs, as (host path, guest path).
        let mut copies: Vec<(PathBuf, String)> = Vec::new();
        for (host, guest) in &self.programs {
            copies.push((host.clone(), guest.clone()));
            for lib in shared_libraries(host) {
                let guest = lib.display().to_string();
                if !copies.iter().any(|(_, g)| *g == guest) {
                    copies.push((lib, guest));
                }
            }
        }

        let mut h = DefaultHasher::new();
        (FORMAT, &init, &self.files).hash(&mut h);
        hash_files(
            &mut h,
            [kernel.as_path(), busybox.as_path()]
                .into_iter()
                .chain(modules.iter().map(PathBuf::as_path))
                .chain(copies.iter().map(|(p, _)| p.as_path())),
        );
        for (_, guest) in &copies {
            guest.hash(&mut h);
        }
        let prefix = format!("qemu-ifup-rs-{}-", self.name);
        let dir = cache_dir.join(format!("{prefix}{release}-{:016x}", h.finish()));
        cached_image(cache_dir, &dir, &kernel, || {
            remove_older_images(cache_dir, &prefix, &dir);
            self.initramfs(&busybox, &modules, &init, &copies)
        })
    }

    /// The initramfs: the base (busybox, `modules`, `init`), then `copies` (host path, guest
    /// path) and the added files, each with its parent directories.
    fn initramfs(
        &self,
        busybox: &Path,
        modules: &[PathBuf],
        init: &str,
        copies: &[(PathBuf, String)],
    ) -> Vec<u8> {
        let mut c = base_initramfs(busybox, modules, init);
        let mut dirs: BTreeSet<String> = BASE_DIRS.iter().map(|d| (*d).to_owned()).collect();
        let mut add_parents = |c: &mut crate::cpio::Cpio, guest: &str| {
            let rel = guest.trim_start_matches('/');
            let mut at = 0;
            while let Some(i) = rel[at..].find('/') {
                let parent = &rel[..at + i];
                if dirs.insert(parent.to_owned()) {
                    c.dir(parent, 0o755);
                }
                at += i + 1;
            }
        };
        for (host, guest) in copies {
            add_parents(&mut c, guest);
            let data =
                fs::read(host).unwrap_or_else(|e| panic!("cannot read {}: {e}", host.display()));
            c.file(guest.trim_start_matches('/'), 0o755, &data);
        }
        for (guest, mode, contents) in &self.files {
            add_parents(&mut c, guest);
            c.file(guest.trim_start_matches('/'), *mode, contents);
        }
        c.finish()
    }
}

/// Best effort: images of this name other than `keep` (they are large and never reused).
fn remove_older_images(cache_dir: &Path, prefix: &str, keep: &Path) {
    let Ok(entries) = fs::read_dir(cache_dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        let ours = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(prefix));
        if ours && path != keep {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// The shared libraries `program` loads, dynamic loader included, as `ldd` resolves them on the
/// host. Empty for a static program.
fn shared_libraries(program: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd")
        .arg(program)
        .env_clear()
        .env("PATH", crate::CLEAN_PATH)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ldd {}`: {e}", program.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // "not a dynamic executable": nothing to copy.
        return Vec::new();
    }
    parse_ldd(&text).unwrap_or_else(|line| {
        panic!(
            "`ldd {}` cannot resolve a library: {line}",
            program.display()
        )
    })
}

/// Parses `ldd` output: `libx.so.1 => /lib/…/libx.so.1 (0x…)` and `/lib64/ld-linux….so.2 (0x…)`
/// lines give paths; `linux-vdso.so.1 (0x…)` has none. `Err(line)` for a library not found.
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim) {
        let target = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        if target.starts_with("not found") {
            return Err(line.to_owned());
        }
        let path = target.split(" (").next().unwrap_or("").trim();
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibmnl.so.0 => /lib/x86_64-linux-gnu/libmnl.so.0 (0x00007f19)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f18)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f1a)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libmnl.so.0"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tlibfoo.so.1 => not found\n").is_err());
    }

    #[test]
    fn iproute2_libraries_resolve() {
        let libs = shared_libraries(Path::new("/usr/sbin/ip"));
        assert!(libs.iter().any(|l| l.ends_with("libc.so.6")), "{libs:?}");
        assert!(
            libs.iter()
                .any(|l| l.to_string_lossy().contains("ld-linux")),
            "{libs:?}"
        );
    }
}
