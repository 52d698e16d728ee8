//! IfName::parse_os over the raw input, and glob_match over the input split at its first
//! newline into a pattern and a name.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use ifup_policy::{glob_match, validate_glob, IfName, MAX_NAME_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match IfName::parse_os(OsStr::from_bytes(data)) {
        Ok(name) => {
            let s = name.as_str();
            assert_eq!(s.as_bytes(), data);
            assert!((1..=MAX_NAME_LEN).contains(&s.len()));
            assert!(!s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/'));
            assert!(s != "." && s != "..");
            assert!(!s.starts_with('-'));
            assert_eq!(IfName::parse(s).as_ref(), Ok(&name));
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.chars().any(char::is_control), "{msg:?}");
            assert!(msg.len() < 400, "{msg:?}");
        }
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, name) = text.split_once('\n').unwrap_or((text, text));
    // Must terminate quickly and never panic, valid pattern or not.
    let matched = glob_match(pattern, name);
    let _ = validate_glob(pattern);
    // Every name matches itself escaped, and '*' around it.
    let escaped: String = name.chars().flat_map(|c| ['\\', c]).collect();
    assert!(validate_glob(&escaped).is_ok());
    assert!(glob_match(&escaped, name));
    assert!(glob_match(&format!("*{escaped}*"), name));
    assert!(glob_match("*", name));
    // Adding a '*' at the end never loses a match.
    if matched {
        assert!(glob_match(&format!("{pattern}*"), name) || pattern.ends_with('\\'));
    }
});
