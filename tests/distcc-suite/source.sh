#!/usr/bin/env bash
# Prints the directory of distcc's source tree (distcc-3.4/, from the distro's source
# package), fetching and unpacking it first when the cache does not hold it yet. Nothing
# third-party is committed: deb-src is enabled from the existing entry if needed, then
# `apt-get source --download-only distcc`, and the orig tarball is unpacked into the cache
# directory (DISTCC_SUITE_CACHE, else LSDISTCC_SUITE_CACHE, default
# ${TMPDIR:-/tmp}/distcc-suite-src). The Debian patch tarball may be missing from the
# archive; the orig tarball is enough.
#
# Usage: tests/distcc-suite/source.sh
# Concurrent callers wait for each other (flock on the cache directory).
set -euo pipefail

cache=${DISTCC_SUITE_CACHE:-${LSDISTCC_SUITE_CACHE:-${TMPDIR:-/tmp}/distcc-suite-src}}
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

tree() { find "$cache" -mindepth 3 -maxdepth 3 -path "$cache/distcc-*/test/testdistcc.py" -printf '%h\n' -quit 2>/dev/null; }
found=$(tree || true)
if [ -z "$found" ]; then
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  if ! apt-get source --print-uris distcc >/dev/null 2>&1; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
      "${sudo[@]}" tee /etc/apt/sources.list.d/deb-src.sources >/dev/null
    "${sudo[@]}" apt-get update -qq
  fi
  (cd "$cache" && apt-get source --download-only distcc >/dev/null 2>&1 || true)
  orig=$(find "$cache" -maxdepth 1 -name 'distcc_*.orig.tar.*' -print -quit)
  [ -n "$orig" ] || { echo "$0: could not fetch distcc's source package" >&2; exit 1; }
  tar -xf "$orig" -C "$cache"
  found=$(tree)
fi
dirname "$found"
