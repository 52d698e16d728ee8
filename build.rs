//! Build script of the `qemu-ifup-rs` package: links the GCC unwinder statically on Linux/glibc.
//!
//! `libgcc_eh.a` (from libgcc-N-dev, which every Rust toolchain on a glibc system has through gcc)
//! is named on the link line of this package's targets, ahead of std's `-lgcc_s`, so the linker's
//! `--as-needed` drops `libgcc_s.so.1`: `qemu-ifup` then loads only libc. That saves opening and
//! mapping one more library and running its constructor at every call (about 45 µs of 630 µs
//! here, for +24 KiB per binary; see docs/PERFORMANCE.md). Unwinding (`panic = "unwind"` in
//! tests, backtraces) works the same.
//!
//! Why here and not in `.cargo/config.toml` (where it was): a build script's link instruction
//! holds wherever the tree is built from and whatever the build environment sets. A
//! `RUSTFLAGS` variable (Fedora's `%cargo_build`, Arch's makepkg.conf) replaced the config's
//! `rustflags` and silently linked `libgcc_s` again; a copy of the tree unpacked inside the
//! checkout (makepkg's `src/`) merged both configs' `rustflags` and rustc refused the doubled
//! `-l static:-bundle=gcc_eh`. `-bundle`: the archive is not copied into the rlib; the final
//! link finds it in gcc's own library directory.

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" {
        println!("cargo::rustc-link-lib=static:-bundle=gcc_eh");
    }
}
