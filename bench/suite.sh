#!/usr/bin/env bash
# The verification and benchmark suite: our pump and include server against distcc 3.4's
# Python pump, side by side in one run, on git (C: libgit.a, xdiff, reftable and the git
# binary, 396 TUs), leveldb and ninja (C++, cmake) and the Boost set (tests/boost-set).
#
#   bench/suite.sh [ROOT]
#
# ROOT (default ${PUMPBENCH_ROOT:-${TMPDIR:-/tmp}/pumpbench}) holds the corpora fetched from
# the distro's source packages (bench/corpora.sh), the reference pump (built there by
# ../shared/bench/reference-pump.sh unless PUMP_REFERENCE names an existing one) and the
# raw JSON of this run (ROOT/results). For each corpus and each implementation:
#   correctness  every TU's reply against gcc -MM (recall), files shipped (pump-bench --recall);
#   remote build the whole code base with `pump make` against a loopback distccd,
#                DISTCC_FALLBACK=0: TUs compiled in pump mode, fall-backs, discrepancies,
#                objects against a local build after objcopy --strip-debug (pump-build);
#   cost         launcher start-up, cold first request, 16 first requests at once (not on
#                Boost), warm median/p90 (3 passes on each of 3 servers), server CPU, peak
#                memory, throughput with 1, 4 and 16 clients (pump-bench; the cold request
#                over 15 fresh servers, with no compiler probes saved and with them saved);
# then `pump --startup` and `pump true` (pump-startup), and pump-report writes the tables,
# the targets met or missed and the SVG plots to bench/results (RESULTS to change it).
# SUITE_CORPORA narrows the corpora (default "git leveldb ninja boost"); SUITE_JOBS sets
# make -j and distccd --jobs (default 4).
# Exit status: 0 when every correctness target is met, 1 when one is missed, 2 on error.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
root=$(bench/corpora.sh "${1:-}" | tail -1)
ref=${PUMP_REFERENCE:-$root/reference-pump}
if [ ! -x "$ref/distcc-pump" ]; then
  bash "$top/../shared/bench/reference-pump.sh" "$ref" >/dev/null
fi
corpora=${SUITE_CORPORA:-git leveldb ninja boost}
jobs=${SUITE_JOBS:-4}
out=${RESULTS:-$top/bench/results}
raw=$root/results
mkdir -p "$raw" "$out"
for c in $corpora; do rm -f "$raw/bench-$c.json" "$raw/build-$c.json"; done

cargo build --release --bins -p pump-bench -p include-server-launcher -p pump
bin=$top/target/release
ours=$bin/include_server

{
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r); shared with other jobs, so figures are medians and noisy"
  echo "this tree: $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$top" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)'), $(rustc --version)"
  echo "run: $(date -u '+%Y-%m-%d %H:%M UTC'), make -j$jobs, distccd --jobs $jobs"
} > "$raw/machine.txt"
{
  echo "packages: $(dpkg-query -W -f='${Package} ${Version}, ' distcc distcc-pump gcc g++ libboost-dev cmake python3 binutils | sed 's/, $//')"
  echo "corpora (source packages): $(tr '\n' ' ' < "$root/versions.txt")"
  echo "reference: $ref/distcc-pump (Debian's pump script and include_server.py, C extension rebuilt with PY_SSIZE_T_CLEAN, /usr/bin/distcc)"
} > "$raw/versions.txt"
cat "$raw/machine.txt" "$raw/versions.txt"

for c in $corpora; do
  case $c in
    git) src=(--make-dry-run "$root/git/git-make-n-all.txt" --directory "$root/git") ;;
    leveldb) src=(--compile-commands "$root/leveldb/build/compile_commands.json") ;;
    ninja) src=(--compile-commands "$root/ninja/build/compile_commands.json") ;;
    boost) src=(--sources "$top/tests/boost-set") ;;
    *) echo "suite: unknown corpus $c" >&2; exit 2 ;;
  esac
  # The cold burst: as many first requests at once as `make -j16` sends (not on Boost,
  # where Python takes 8 s a request).
  burst=(--cold-burst 16 --burst-runs 5)
  [ "$c" = boost ] && burst=()
  "$bin/pump-bench" --label "$c" --recall --warm-passes 3 --warm-servers 3 --cold-runs 15 "${burst[@]}" "${src[@]}" --ours "$ours" --reference "$ref" \
    --json "$raw/bench-$c.json"
done

"$bin/pump-startup" --runs 21 --json "$raw/startup.json" "$bin/pump" "$ref/distcc-pump"

for c in $corpora; do
  "$bin/pump-build" --corpus "$c" --root "$root" --boost-set "$top/tests/boost-set" \
    --jobs "$jobs" --pump "rust=$bin/pump" --pump "python=$ref/distcc-pump" \
    --json "$raw/build-$c.json"
done

"$bin/pump-report" --results "$raw" --out "$out"
