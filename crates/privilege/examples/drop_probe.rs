//! Test probe for `tests/setuid.rs` (not installed): behaves like the start of a helper's `main`
//! and reports what it sees, one `key=value` per line on stdout.
//!
//! It clears the environment, reads the caller's ids, tries `drop_to_caller` whatever the mode
//! (so the tests also see how it fails), and prints the kernel's view before and after. With the
//! argument `--other-ids` it asks `drop_to_caller` for the caller's uid + 1 instead (the guard
//! against dropping to anyone but the caller). With `--become-caller` it calls `become_caller`
//! instead, and with `--drop-all` it then also drops every capability.

use ifup_privilege as privilege;

fn ids_line(ids: &privilege::Ids) -> String {
    let groups: Vec<String> = ids.groups.iter().map(u32::to_string).collect();
    format!(
        "uid={} gid={} groups={}",
        ids.uid,
        ids.gid,
        groups.join(",")
    )
}

fn state_line() -> String {
    match privilege::proc_state() {
        Ok(st) => st.summary(),
        Err(e) => format!("error: {e}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let env_before = std::env::vars_os().count();
    let cleared = privilege::clear_environment();
    println!("env_before={env_before}");
    println!(
        "clear_environment={}",
        cleared.map_or_else(|e| format!("error: {e}"), |()| "ok".into())
    );
    println!("env_after={}", std::env::vars_os().count());

    println!(
        "gained_privilege={}",
        u8::from(privilege::gained_privilege())
    );
    println!(
        "start={}",
        match privilege::start() {
            Ok(s) => format!("{s:?}"),
            Err(e) => format!("error: {e}"),
        }
    );
    println!("before={}", state_line());
    println!(
        "why_unprivileged={}",
        privilege::why_unprivileged(privilege::no_new_privs())
            .map_or_else(|| "none".into(), |w| format!("{w:?}"))
    );

    let mut ids = match privilege::real_ids() {
        Ok(ids) => ids,
        Err(e) => {
            println!("real_ids=error: {e}");
            std::process::exit(1);
        }
    };
    println!("real_ids={}", ids_line(&ids));
    if flag("--other-ids") {
        ids.uid = ids.uid.wrapping_add(1);
    }

    let result = if flag("--become-caller") {
        privilege::become_caller()
    } else {
        privilege::drop_to_caller(&ids)
    };
    match result {
        Ok(()) => println!("drop=ok"),
        Err(e) => println!("drop=error: {e}"),
    }
    if flag("--drop-all") {
        match privilege::drop_all_capabilities() {
            Ok(()) => println!("drop_all=ok"),
            Err(e) => println!("drop_all=error: {e}"),
        }
    }
    println!("after={}", state_line());
    println!("has_net_admin={}", u8::from(privilege::has_net_admin()));
    match privilege::real_ids() {
        Ok(ids) => println!("real_ids_after={}", ids_line(&ids)),
        Err(e) => println!("real_ids_after=error: {e}"),
    }
}
