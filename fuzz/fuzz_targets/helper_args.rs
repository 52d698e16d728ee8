//! The command line of `qemu-ifup` (`qemu_ifup_rs::cli::parse`), bridge-helper arguments
//! included: the input split at NUL bytes is argv after argv[0], each item raw bytes (an OsString,
//! not necessarily UTF-8). Seeds: `fuzz/seeds/helper_args/`; dictionary:
//! `fuzz/dict/helper_args.dict`.
//!
//! Invariants, for both programs: no panic; a bridge-helper result comes only from qemu-ifup, with
//! exactly one `--br=` and one `--fd=` item in the input, `fd >= 0` and the values those items
//! carry, `vnet_hdr` iff `--use-vnet` was given; an input with a bridge-helper argument never
//! parses as anything else; every error is a usage error (exit status 2) whose message is one line
//! without control characters.
#![no_main]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use libfuzzer_sys::fuzz_target;
use qemu_ifup_rs::cli::{parse, Command};
use qemu_ifup_rs::Action;

fn items(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|&b| b == 0).collect()
}

fn is_helper_arg(item: &[u8]) -> bool {
    std::str::from_utf8(item)
        .is_ok_and(|a| a == "--use-vnet" || a.starts_with("--fd=") || a.starts_with("--br="))
}

fuzz_target!(|data: &[u8]| {
    let items = items(data);
    let argv = || items.iter().map(|i| OsString::from(OsStr::from_bytes(i)));
    let helper_args = items.iter().any(|i| is_helper_arg(i));
    for action in [Action::Up, Action::Down] {
        match parse(action, argv()) {
            Ok(Command::Helper(h)) => {
                assert_eq!(action, Action::Up, "qemu-ifdown is no bridge helper");
                assert!(h.fd >= 0);
                let with = |prefix: &[u8]| -> Vec<&[u8]> {
                    items
                        .iter()
                        .filter_map(|i| i.strip_prefix(prefix))
                        .collect()
                };
                let (br, fd) = (with(b"--br="), with(b"--fd="));
                assert_eq!(br.len(), 1, "--br= items: {br:?}");
                assert_eq!(fd.len(), 1, "--fd= items: {fd:?}");
                assert_eq!(h.bridge.as_bytes(), br[0]);
                assert_eq!(
                    std::str::from_utf8(fd[0])
                        .ok()
                        .and_then(|s| s.parse::<i32>().ok()),
                    Some(h.fd)
                );
                assert_eq!(h.vnet_hdr, items.iter().any(|i| *i == b"--use-vnet"));
                // Nothing but the three arguments.
                assert!(items.iter().all(|i| is_helper_arg(i)));
            }
            Ok(other) => {
                assert!(
                    !(helper_args && action == Action::Up),
                    "bridge-helper arguments parsed as {other:?}"
                );
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.is_empty());
                assert!(!msg.contains('\n'), "{msg:?}");
                assert!(!msg.chars().any(char::is_control), "{msg:?}");
                assert_eq!(e.exit_code(), 2, "{msg}");
            }
        }
    }
});
