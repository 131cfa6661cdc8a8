#!/usr/bin/env bash
# The include-server benchmark: ours against distcc 3.4's Python include server, side by
# side in one run, over the socket, on the compile commands of git, leveldb and ninja.
#
#   bench/run.sh [ROOT]          (ROOT as in bench/corpora.sh)
#
# Prints one table per corpus (medians; ratios are python / rust, higher is better for us).
# The whole suite (remote builds, pump start-up, plots, targets) is bench/suite.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
root=$(bench/corpora.sh "${1:-}" | tail -1)
ref=$root/reference-pump
[ -x "$ref/distcc-pump" ] || bash "$top/../shared/bench/reference-pump.sh" "$ref" >/dev/null
cargo build --release --workspace --bins
bench=$top/target/release/pump-bench
ours=$top/target/release/include_server
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(gcc --version | head -1)"
echo "corpora: $(tr '\n' ' ' < "$root/versions.txt")"
"$bench" --label git --recall --make-dry-run "$root/git/git-make-n.txt" --directory "$root/git" \
  --ours "$ours" --reference "$ref" --json "$root/git.json"
"$bench" --label leveldb --recall --compile-commands "$root/leveldb/build/compile_commands.json" \
  --ours "$ours" --reference "$ref" --json "$root/leveldb.json"
"$bench" --label ninja --recall --compile-commands "$root/ninja/build/compile_commands.json" \
  --ours "$ours" --reference "$ref" --json "$root/ninja.json"
"$bench" --label "boost set" --sources "$top/tests/boost-set" --recall \
  --ours "$ours" --reference "$ref" --json "$root/boost.json"
