#!/usr/bin/env bash
# Run the whole test suite, as root, on Debian: installs the Debian packages the tests use
# (QEMU, busybox, a kernel for the guest, iproute2, setcap, setpriv), then `cargo test`.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: the tests create network namespaces, bridges, taps and setuid copies: run as root (sudo)" >&2
    exit 1
fi
bash scripts/deps.sh
exec cargo test --workspace --locked "$@"
