#!/usr/bin/env bash
# packaging/source-tarball.sh OUTDIR: write OUTDIR/qemu-ifup-rs-VERSION.tar.gz, the source the
# RPM spec and the PKGBUILD build from, and print its path.
#
# It holds the working tree as it is, uncommitted work included: the files git tracks or would
# track (`git ls-files --cached --others --exclude-standard`, so target/ and everything else in
# .gitignore stays out), or, outside a git checkout, everything but .git and what the
# .gitignore files name (target/, makepkg's products in packaging/arch). For a
# release from a clean commit this is the same as `git archive --prefix=qemu-ifup-rs-VERSION/`.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/packaging/common.sh"
outdir=$(absolute_dir "$1")
version=$(workspace_version "$root")
name="qemu-ifup-rs-$version"
tarball="$outdir/$name.tar.gz"

cd "$root"
list=$(mktemp)
trap 'rm -f "$list"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked files deleted in the working tree are left out.
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        sort -z -u >"$list"
else
    # The same as .gitignore and packaging/arch/.gitignore leave out (makepkg's build products).
    find . \( -path ./target -o -path ./.git -o -path ./fuzz/target -o -path ./fuzz/corpus \
        -o -path ./fuzz/artifacts -o -path ./packaging/arch/src -o -path ./packaging/arch/pkg \) -prune \
        -o -path './packaging/arch/*.tar.gz' -o -path './packaging/arch/*.pkg.tar*' \
        -o \( -type f -o -type l \) -printf '%P\0' | sort -z >"$list"
fi
# Reproducible: fixed owner, mode bits from the tree, mtime of the newest commit (or now).
mtime=$(git log -1 --format=@%ct 2>/dev/null || date +@%s)
tar --create --gzip --file "$tarball" --transform "s,^,$name/," \
    --owner=0 --group=0 --numeric-owner --mtime="$mtime" --sort=name \
    --no-recursion --null --files-from "$list"
echo "$tarball"
