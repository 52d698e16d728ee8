//! Which `qemu-ifup` / `qemu-ifdown` a test runs: the ones cargo built, or the installed package's.
//!
//! `QEMU_IFUP_RS_INSTALLED=1` switches the tests that use [`helper_bins`] to
//! `/usr/libexec/qemu-ifup-rs` and `/usr/libexec/qemu-ifdown-rs`, so that
//! `scripts/package-test.sh` can run them against the installed `.deb`.

use std::path::PathBuf;

/// The environment variable that selects the installed helpers.
pub const INSTALLED_ENV: &str = "QEMU_IFUP_RS_INSTALLED";
/// Where the packages install `qemu-ifup`.
pub const INSTALLED_UP: &str = "/usr/libexec/qemu-ifup-rs";
/// Where the packages install `qemu-ifdown`.
pub const INSTALLED_DOWN: &str = "/usr/libexec/qemu-ifdown-rs";

/// `(qemu-ifup, qemu-ifdown)`: the installed helpers when `QEMU_IFUP_RS_INSTALLED=1`, else
/// `default_up` and `default_down` (normally `env!("CARGO_BIN_EXE_qemu-ifup")` and
/// `env!("CARGO_BIN_EXE_qemu-ifdown")`). Panics if the installed helpers were asked for but are
/// missing, or if the variable has any other value than `1` or `0`.
pub fn helper_bins(default_up: &str, default_down: &str) -> (PathBuf, PathBuf) {
    let installed = match std::env::var(INSTALLED_ENV).as_deref() {
        Ok("1") => true,
        Ok("0") | Err(std::env::VarError::NotPresent) => false,
        Ok(other) => panic!("{INSTALLED_ENV}={other:?}: expected 1 (installed helpers) or 0"),
        Err(e) => panic!("{INSTALLED_ENV}: {e}"),
    };
    if !installed {
        return (PathBuf::from(default_up), PathBuf::from(default_down));
    }
    for path in [INSTALLED_UP, INSTALLED_DOWN] {
        assert!(
            std::path::Path::new(path).is_file(),
            "{INSTALLED_ENV}=1 but {path} is not installed (apt-get install ./qemu-ifup-rs_*.deb)"
        );
    }
    (PathBuf::from(INSTALLED_UP), PathBuf::from(INSTALLED_DOWN))
}
