#!/usr/bin/env bash
# packaging/build-rpm.sh [OUTDIR] [RPMBUILD-ARGS...]: build the binary RPM of
# packaging/rpm/qemu-ifup-rs.spec from the working tree's source tarball, and copy the .rpm
# files to OUTDIR (default target/packages), printing the path of the main one last.
#
# On Fedora/RHEL this is an ordinary rpmbuild. On Debian (apt-get install rpm) it runs with
# --nodeps: the RPM database there is empty, so BuildRequires (cargo, rust) cannot be
# satisfied from it even though cargo is on PATH. Cargo's target directory is kept in
# target/package-build-rpm (set CARGO_TARGET_DIR to change it), so rebuilds are incremental.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/packaging/common.sh"
outdir=$(absolute_dir "${1:-$root/target/packages}")
shift || true
spec="$root/packaging/rpm/qemu-ifup-rs.spec"

version=$(workspace_version "$root")
spec_version=$(awk '/^Version:/ {print $2; exit}' "$spec")
if [ "$spec_version" != "$version" ]; then
    echo "$0: $spec has Version: $spec_version but Cargo.toml $version" >&2
    exit 1
fi

nodeps=()
if [ -r /etc/debian_version ] || ! rpm -q rpm >/dev/null 2>&1; then
    nodeps=(--nodeps)
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/package-build-rpm}
top=$(mktemp -d "${TMPDIR:-/tmp}/qemu-ifup-rs-rpm.XXXXXX")
trap 'rm -rf "$top"' EXIT
mkdir -p "$top"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}
"$root/packaging/source-tarball.sh" "$top/SOURCES" >/dev/null
cp "$spec" "$top/SPECS/"

rpmbuild -bb "${nodeps[@]}" --define "_topdir $top" "$@" "$top/SPECS/qemu-ifup-rs.spec"

main=
while IFS= read -r -d '' rpm; do
    cp "$rpm" "$outdir/"
    case "$(basename "$rpm")" in
        qemu-ifup-rs-"$version"-*.rpm) main="$outdir/$(basename "$rpm")" ;;
    esac
done < <(find "$top/RPMS" -name '*.rpm' -print0)
[ -n "$main" ] || { echo "$0: rpmbuild made no qemu-ifup-rs-$version-*.rpm" >&2; exit 1; }
echo "$main"
