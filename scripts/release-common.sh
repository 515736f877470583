# What scripts/release.sh and scripts/check-release.sh share; sourced, not run. Both run from the
# repository's top folder.

release_fail() {
    echo "release: error: $*" >&2
    exit 1
}

# The version, from the one place it is written (Sources/ConveyorProtocol/Version.swift).
release_version() {
    local file=Sources/ConveyorProtocol/Version.swift version
    [ -f "$file" ] || release_fail "$file is missing (it holds the version)"
    version=$(sed -n 's/^[[:space:]]*public static let number = "\([^"]*\)"[[:space:]]*$/\1/p' "$file")
    [ -n "$version" ] || release_fail "no line 'public static let number = \"X.Y.Z\"' in $file"
    [[ "$version" =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]] \
        || release_fail "'$version' in $file is not a semantic version (MAJOR.MINOR.PATCH)"
    echo "$version"
}

# CHANGELOG.md must describe the version being released.
release_require_changelog_entry() {
    local version=$1
    grep -q "^## \[${version//./\\.}\] - [0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}\$" CHANGELOG.md 2>/dev/null \
        || release_fail "CHANGELOG.md has no entry '## [$version] - YYYY-MM-DD' for the version in Sources/ConveyorProtocol/Version.swift"
}

release_arch() {
    uname -m
}

release_name() {
    echo "conveyor-$1-linux-$(release_arch)"
}

# The libraries a release binary may need: the C library's, the C++ runtime's, the two that
# stay dynamic on purpose (libzmq from libzmq5, libcrypto from libssl3), and zlib (zlib1g, an
# essential package of Debian and Ubuntu: swift-nio-extras links it, for the webhook sender's
# HTTP client). Anything of Swift's
# (libswift*, Foundation, libdispatch, ICU) must be linked in.
release_allowed_library() {
    case "$1" in
        libzmq.so.*|libcrypto.so.*|libz.so.*) return 0 ;;
        libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libutil.so.*|ld-linux*.so.*) return 0 ;;
        libstdc++.so.*|libgcc_s.so.*) return 0 ;;
        *) return 1 ;;
    esac
}

# Fails unless the binary needs only allowed libraries, has no run path into a toolchain, and every
# library it needs is found. Prints what it needs.
release_check_linkage() {
    local binary=$1 needed library bad=0 runpath resolved
    command -v readelf >/dev/null 2>&1 && command -v objdump >/dev/null 2>&1 \
        || release_fail "readelf and objdump are missing (Debian: apt-get install binutils)"
    needed=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p')
    [ -n "$needed" ] || release_fail "readelf lists no needed libraries for $binary (not a dynamic ELF executable?)"
    local forbidden=()
    for library in $needed; do
        release_allowed_library "$library" || forbidden+=("$library")
    done
    if [ "${#forbidden[@]}" -gt 0 ]; then
        echo "release: error: $binary needs ${forbidden[*]}: Swift's libraries (libswift*, Foundation, libdispatch, ICU) must be linked in (swift build --static-swift-stdlib); only libzmq, libcrypto, zlib and the C and C++ runtimes may stay dynamic" >&2
        bad=1
    fi
    # $ORIGIN (the binary's own folder, which the linker adds) is the one run path allowed.
    runpath=$(readelf -d "$binary" | sed -n 's/.*(\(RPATH\|RUNPATH\)).*\[\(.*\)\]/\2/p')
    if [ -n "$runpath" ] && [ "$runpath" != '$ORIGIN' ]; then
        echo "release: error: $binary has the run path $runpath: a release binary must not look for libraries in the build machine's folders" >&2
        bad=1
    fi
    resolved=$(ldd "$binary" 2>&1) || release_fail "ldd $binary failed: $resolved"
    if grep -q 'not found' <<<"$resolved"; then
        echo "release: error: libraries of $binary not found here:" >&2
        grep 'not found' <<<"$resolved" | sed 's/^/  /' >&2
        bad=1
    fi
    if grep -qi 'swift' <<<"$resolved"; then
        echo "release: error: $binary loads libraries from a Swift toolchain:" >&2
        grep -i 'swift' <<<"$resolved" | sed 's/^/  /' >&2
        bad=1
    fi
    [ "$bad" -eq 0 ] || exit 1
    echo "release: $binary needs only: $(echo $needed)" >&2
    local glibc
    glibc=$(objdump -T "$binary" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -n 1)
    [ -z "$glibc" ] || echo "release: it runs where glibc is ${glibc#GLIBC_} or newer (the build machine's, or a later one)" >&2
}
