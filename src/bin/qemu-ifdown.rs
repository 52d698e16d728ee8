//! `qemu-ifdown TAP`: detach QEMU's tap from its bridge. See `qemu-ifdown --help`.

fn main() {
    std::process::exit(qemu_ifup_rs::main(qemu_ifup_rs::Action::Down));
}
