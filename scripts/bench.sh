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
pkgs=(qemu-system-common iproute2)
need=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release --workspace --locked
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/ifup-bench" --bin-dir "$target/release" "$@"
