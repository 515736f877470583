#!/usr/bin/env bash
# Builds the release tarball dist/conveyor-VERSION-linux-ARCH.tar.gz (and its .sha256): the
# conveyor binary with Swift's runtime and Foundation linked in (swift build -c release
# --static-swift-stdlib), so that it runs on a Linux machine without Swift; libzmq (Debian: libzmq5)
# and libcrypto (libssl3) stay dynamic system libraries. Beside it: README.md, CHANGELOG.md, docs/
# and the licenses of what is linked in.
#
#   scripts/release.sh            build the tarball
#   scripts/release.sh --check    build it, then run scripts/check-release.sh on it (unpacked in a
#                                 temporary folder, run with a clean environment)
#
# The version is the one in Sources/ConveyorProtocol/Version.swift; CHANGELOG.md must have an entry
# for it. The build has a folder of its own (.build-release-static), so the usual .build is left
# alone. How to cut a release: README.md, "Releases".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/release-common.sh
trap 'echo "release: FAILED: line $LINENO: $BASH_COMMAND (status $?)" >&2' ERR

check=0
case "${1:-}" in
    "") ;;
    --check) check=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: scripts/release.sh [--check]" >&2; exit 64 ;;
esac

version=$(release_version)
release_require_changelog_entry "$version"
name=$(release_name "$version")
scratch=.build-release-static
build=(swift build -c release --product conveyor --static-swift-stdlib --scratch-path "$scratch")

bash scripts/ensure-deps.sh
command -v objcopy >/dev/null 2>&1 || release_fail "objcopy is missing (Debian: apt-get install binutils)"

started=$(date +%s)
echo "release: building conveyor $version for linux-$(release_arch): ${build[*]}" >&2
"${build[@]}"
binary="$("${build[@]}" --show-bin-path)/conveyor"
built=$(date +%s)
echo "release: built in $((built - started)) s" >&2

line=$("$binary" --version)
case "$line" in
    "$version ("*) ;;
    *) release_fail "the built binary says '$line' to --version, not $version" ;;
esac
release_check_linkage "$binary"

staging=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-release.XXXXXX")
trap 'rm -rf "$staging"' EXIT
root="$staging/$name"
mkdir -p "$root/licenses"
# Without the debug information (a third of the size); the symbol table stays, for backtraces.
objcopy --strip-debug "$binary" "$root/conveyor"
chmod 0755 "$root/conveyor"
cp README.md CHANGELOG.md "$root/"
cp -R docs "$root/docs"
for file in LICENSE* COPYING* NOTICE*; do
    [ -e "$file" ] && cp "$file" "$root/"
done
# What the binary links in: the Swift runtime and Foundation (the toolchain's license), and the
# packages of Package.swift.
toolchain_license="$(dirname "$(readlink -f "$(command -v swift)")")/../share/swift/LICENSE.txt"
if [ -f "$toolchain_license" ]; then
    mkdir -p "$root/licenses/swift"
    cp "$toolchain_license" "$root/licenses/swift/"
fi
for package in "$scratch"/checkouts/*/; do
    package=${package%/}
    mkdir -p "$root/licenses/$(basename "$package")"
    for file in "$package"/LICENSE* "$package"/NOTICE*; do
        [ -e "$file" ] && cp "$file" "$root/licenses/$(basename "$package")/"
    done
done

chmod -R u+rwX,go+rX,go-w "$root"

# The same bytes for the same commit: sorted names, one owner, the commit's time, no gzip timestamp.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
mkdir -p dist
tarball="dist/$name.tar.gz"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$staging" -cf - "$name" \
    | gzip -n -9 > "$tarball.partial"
mv "$tarball.partial" "$tarball"
(cd dist && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "release: $tarball ($(du -h "$tarball" | cut -f1); the binary $(du -h "$root/conveyor" | cut -f1)), $(cut -d' ' -f1 "$tarball.sha256")" >&2
if ! git describe --exact-match --tags HEAD 2>/dev/null | grep -qx "v$version"; then
    echo "release: note: HEAD is not tagged v$version (README.md, \"Releases\")" >&2
fi

if [ "$check" -eq 1 ]; then
    bash scripts/check-release.sh "$tarball"
fi
echo "release: done in $(($(date +%s) - started)) s" >&2
