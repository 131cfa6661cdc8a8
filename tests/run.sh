#!/usr/bin/env bash
# The project's test command: installs what the tests need from the distro, builds every
# binary of the workspace, and runs every test (unit, integration and end to end against
# the distro's real distcc client and distccd on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."

# Distro packages the tests use: the real distcc client and distccd, the compilers whose
# output the include server must cover, binutils for objcopy, Boost's headers for the
# macro-heavy cases, liblzo2 (the tests decompress with distccd's decompressor),
# ping/setpriv for distcc's own lsdistcc test case, autoconf, automake and libpopt-dev
# to build the helper programs of distcc's own test suite (tests/distcc-suite), and clang
# for pump mode with another compiler family.
packages=(distcc distcc-pump gcc g++ make binutils dpkg-dev libboost-dev liblzo2-dev iputils-ping util-linux python3 cmake zlib1g-dev xz-utils autoconf automake libpopt-dev clang)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "tests/run.sh: installing ${missing[*]}" >&2
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo build --workspace --bins
cargo test --workspace "$@"
