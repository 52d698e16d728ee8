#!/usr/bin/env bash
# packaging/build-deb.sh [OUTDIR]: build the Debian package from the working tree and copy
# qemu-ifup-rs_VERSION_ARCH.deb to OUTDIR (default target/packages), printing its path last.
#
# dpkg-buildpackage wants debian/ at the top of the source tree, and this repository keeps it in
# packaging/debian, so the build runs in a scratch copy: the source tarball of
# packaging/source-tarball.sh, unpacked, plus packaging/debian as debian/. The scratch copy is
# deleted afterwards. Cargo's target directory is kept between builds in
# target/package-build (set CARGO_TARGET_DIR to use another), so a rebuild is incremental.
#
# Needs debhelper (apt-get install debhelper) and Rust >= 1.80. Debian's own rustc is used if it
# is new enough (trixie and later); otherwise the cargo on PATH (rustup) is used, with the build
# profile pkg.qemu-ifup-rs.rustup that drops the cargo/rustc build dependencies.
# Extra arguments after OUTDIR go to dpkg-buildpackage (e.g. DEB_BUILD_OPTIONS=nocheck in the
# environment skips the unit tests).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/packaging/common.sh"
outdir=$(absolute_dir "${1:-$root/target/packages}")
shift || true

version=$(workspace_version "$root")
changelog_version=$(dpkg-parsechangelog -l "$root/packaging/debian/changelog" -S Version)
if [ "${changelog_version%%-*}" != "$version" ]; then
    echo "$0: packaging/debian/changelog is at $changelog_version but Cargo.toml at $version:" \
        "add a changelog entry (dch -v $version)" >&2
    exit 1
fi

profile=()
if ! dpkg --compare-versions "$(dpkg-query -W -f='${Version}' rustc 2>/dev/null || echo 0)" ge 1.80; then
    command -v cargo >/dev/null || { echo "$0: no cargo on PATH and no rustc >= 1.80 package" >&2; exit 1; }
    profile=(--build-profiles=pkg.qemu-ifup-rs.rustup)
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/package-build}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/qemu-ifup-rs-deb.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

tarball=$("$root/packaging/source-tarball.sh" "$scratch")
tar -xzf "$tarball" -C "$scratch"
src="$scratch/qemu-ifup-rs-$version"
cp -a "$root/packaging/debian" "$src/debian"

(cd "$src" && dpkg-buildpackage -b -us -uc "${profile[@]}" "$@")

arch=$(dpkg --print-architecture)
deb="qemu-ifup-rs_${changelog_version}_${arch}.deb"
cp "$scratch/$deb" "$outdir/"
echo "$outdir/$deb"
