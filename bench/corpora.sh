#!/usr/bin/env bash
# Fetches real code bases from the distro's source packages and prepares their compile
# commands, for the benchmark and the pump-mode corpus tests. Nothing third-party is kept
# in the repository.
#
#   bench/corpora.sh [ROOT]      (default ROOT: ${PUMPBENCH_ROOT:-${TMPDIR:-/tmp}/pumpbench})
#
# Leaves, under ROOT: git/ (git-make-n.txt: `make -n` of libgit.a and friends;
# git-make-n-all.txt: the same and the `git` binary),
# leveldb/ and ninja/ (build/compile_commands.json from cmake), and versions.txt.
set -euo pipefail
root=$(realpath -m "${1:-${PUMPBENCH_ROOT:-${TMPDIR:-/tmp}/pumpbench}}")
mkdir -p "$root"
cd "$root"

sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
need() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
need dpkg-dev cmake make gcc g++ zlib1g-dev xz-utils libboost-dev binutils
if ! grep -qs '^Types: deb-src' /etc/apt/sources.list.d/*.sources; then
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
    "${sudo[@]}" tee /etc/apt/sources.list.d/deb-src.sources >/dev/null
  "${sudo[@]}" apt-get update -qq
fi

fetch() { # NAME DIR
  local name=$1 dir=$2
  [ -d "$dir" ] && return 0
  ls "${name}"_*.orig.tar.* >/dev/null 2>&1 || apt-get source -qq --download-only "$name" >/dev/null 2>&1 || true
  local tarball
  tarball=$(ls "${name}"_*.orig.tar.* | head -1)
  mkdir -p "$dir.tmp"
  tar -xf "$tarball" -C "$dir.tmp" --strip-components=1
  mv "$dir.tmp" "$dir"
}

fetch git git
if [ ! -s git/git-make-n.txt ]; then
  # The generated headers some sources include, then the compile commands.
  (cd git && make -s command-list.h config-list.h hook-list.h >/dev/null &&
    make -n V=1 libgit.a xdiff/lib.a reftable/libreftable.a > git-make-n.txt 2>/dev/null)
fi
# The suite's git corpus: the libraries plus the `git` binary's own objects (396 TUs).
[ -s git/git-make-n-all.txt ] ||
  (cd git && make -n V=1 libgit.a xdiff/lib.a reftable/libreftable.a git > git-make-n-all.txt 2>/dev/null)
fetch leveldb leveldb
[ -s leveldb/build/compile_commands.json ] ||
  cmake -S leveldb -B leveldb/build -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    -DLEVELDB_BUILD_TESTS=OFF -DLEVELDB_BUILD_BENCHMARKS=OFF >/dev/null
fetch ninja-build ninja
[ -s ninja/build/compile_commands.json ] ||
  cmake -S ninja -B ninja/build -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DBUILD_TESTING=OFF >/dev/null
# browse.cc includes a header generated at build time; gcc -MM needs it.
[ -s ninja/build/build/browse_py.h ] ||
  (cd ninja/build && make -s -f CMakeFiles/ninja.dir/build.make build/browse_py.h >/dev/null)

ls ./*.dsc | sed 's/^\.\///; s/\.dsc$//' > versions.txt
echo "$root"
