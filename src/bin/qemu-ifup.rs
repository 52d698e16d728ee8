//! `qemu-ifup TAP`: attach QEMU's tap to its bridge. See `qemu-ifup --help`.

fn main() {
    std::process::exit(qemu_ifup_rs::main(qemu_ifup_rs::Action::Up));
}
