#!/usr/bin/env bash
# The benchmark (README): as root, on Debian. Installs what it compares against if missing
# (qemu-system-common for Debian's /etc/qemu-ifup, iproute2 for `ip`), builds the release
# binaries and the benchmark, and runs it in a network namespace of its own. It regenerates
# docs/PERFORMANCE.md and docs/perf-links.svg. Extra arguments go to the benchmark
# (`scripts/bench.sh --help`; `--quick` for a smoke run). Takes a few minutes; run it on a quiet
# machine — the load average is recorded in the report.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/bench.sh: the benchmark creates network namespaces, bridges and taps: run as root (sudo)" >&2
    exit 1
fi
bash scripts/deps.sh qemu-system-common iproute2
cargo build --release --workspace --locked
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/ifup-bench" --bin-dir "$target/release" "$@"
