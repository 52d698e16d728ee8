//! `make-guest-image OUTDIR`: builds (or reuses) the test guest under OUTDIR and prints
//! `kernel=PATH` and `initrd=PATH`, for scripts/demo.sh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: make-guest-image OUTDIR");
        std::process::exit(2);
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let dir = dir.canonicalize().unwrap();
    let image = ifup_testkit::GuestImage::get(&dir);
    println!("kernel={}", image.kernel.display());
    println!("initrd={}", image.initrd.display());
}
