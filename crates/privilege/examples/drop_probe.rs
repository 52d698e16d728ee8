//! Test probe for `tests/setuid.rs` (not installed): behaves like the start of a helper's `main`
//! and reports what it sees, one `key=value` per line on stdout.
//!
//! It clears the environment, reads the caller's ids, tries `drop_to_caller` whatever the mode
//! (so the tests also see how it fails), and prints the kernel's view before and after.

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
    let env_before = std::env::vars_os().count();
    privilege::clear_environment();
    println!("env_before={env_before}");
    println!("env_after={}", std::env::vars_os().count());

    println!(
        "gained_privilege={}",
        u8::from(privilege::gained_privilege())
    );
    println!("privileged_mode={}", u8::from(privilege::privileged_mode()));
    println!("before={}", state_line());

    let ids = match privilege::real_ids() {
        Ok(ids) => ids,
        Err(e) => {
            println!("real_ids=error: {e}");
            std::process::exit(1);
        }
    };
    println!("real_ids={}", ids_line(&ids));

    match privilege::drop_to_caller(&ids) {
        Ok(()) => println!("drop=ok"),
        Err(e) => println!("drop=error: {e}"),
    }
    println!("after={}", state_line());
    println!("has_net_admin={}", u8::from(privilege::has_net_admin()));
    match privilege::real_ids() {
        Ok(ids) => println!("real_ids_after={}", ids_line(&ids)),
        Err(e) => println!("real_ids_after=error: {e}"),
    }
}
