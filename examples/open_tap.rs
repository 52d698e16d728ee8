//! Test probe for `tests/privileged.rs` (not installed): `open_tap NAME` attaches to the existing
//! tap NAME the way QEMU does (`/dev/net/tun`, `TUNSETIFF` with `IFF_TAP | IFF_NO_PI`), with the
//! caller's own rights. Prints `opened` and exits 0, or prints the kernel's error and exits 1.
//! The tests run it as a test user to learn what the kernel itself lets that user do with a tap.

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(name), None) = (args.next(), args.next()) else {
        eprintln!("usage: open_tap NAME");
        std::process::exit(2);
    };
    match ifup_testkit::tapio::TapQueue::try_attach(&name) {
        Ok(_) => println!("opened"),
        Err(e) => {
            println!("refused: {e}");
            std::process::exit(1);
        }
    }
}
