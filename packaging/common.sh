# shellcheck shell=bash
# Sourced by the packaging scripts (source-tarball.sh, build-deb.sh, build-rpm.sh).

# The workspace version, from `[workspace.package]` in ROOT/Cargo.toml.
workspace_version() {
    local version
    version=$(awk -F'"' '/^\[workspace\.package\]/ {w = 1} w && /^version *=/ {print $2; exit}' \
        "$1/Cargo.toml")
    [ -n "$version" ] || { echo "$0: no version in $1/Cargo.toml [workspace.package]" >&2; exit 1; }
    echo "$version"
}

# Creates DIR if needed and prints its absolute path.
absolute_dir() {
    mkdir -p "$1" && cd "$1" && pwd
}
