#!/usr/bin/env bash
# Runs distcc's own integration suite (test/testdistcc.py) in pump mode under our pump, as
# distcc's `make pump-installcheck` does: the distro's distcc client and distccd (first in
# PATH), testdistcc's helper programs (h_*) built from the same source package, and our
# pump wrapping the whole run, so that every compile the cases make asks our include
# server (testdistcc's --pump gives each case's DISTCC_HOSTS ",lzo,cpp").
#
# Usage: tests/distcc-suite/pump_check.sh BUILD_DIR
#   BUILD_DIR holds our `pump` and `include_server` (e.g. target/debug).
#
# The source comes from source.sh (the distro's source package, cached). The helper
# programs are built once per cache with autogen.sh, configure and `make check_programs`
# (autoconf, automake and libpopt-dev).
#
# Cases left out: Gdb_Case and GdbOpt{1,2,3}_Case. distccd 3.4 leaves its temp root in the
# DWARF 5 line table (`.debug_line_str`) that GCC 12 writes, so gdb cannot find the
# source; they fail the same way under distcc's own (Python) pump. Cases that report
# NOTRUN (Objective-C without gobjc, ...) stay so.
# As root, the suite runs as uid/gid 65534 (setpriv): distccd run as root drops
# privileges and then cannot write the cases' log files.
#
# A run longer than PUMP_CHECK_TIMEOUT seconds (default 1200) is stopped and fails.
# Exit status: 0 when every case run reports OK and pump reports every translation unit
# served for remote preprocessing; otherwise 1, with the suite's output.
set -euo pipefail

build_dir=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
for b in pump include_server; do
  [ -x "$build_dir/$b" ] || { echo "$0: no $b in $build_dir" >&2; exit 1; }
done
src=$("$(dirname "$0")/source.sh")

# The helper programs, built once next to the unpacked source.
programs=$(dirname "$src")/check-programs
(
  exec 9>"$programs.lock"
  flock 9
  if [ ! -x "$programs/h_strip" ]; then
    rm -rf "$programs"
    cp -r "$src" "$programs"
    cd "$programs"
    { ./autogen.sh && ./configure --disable-pump-mode --without-libiberty &&
      make -j"$(nproc)" check_programs; } >build.log 2>&1 ||
      { tail -30 build.log >&2; echo "$0: building distcc's check programs failed" >&2; exit 1; }
  fi
)

work=$(mktemp -d "${TMPDIR:-/tmp}/pump-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/test" "$work/bin" "$work/tmp"
cp "$src"/test/{testdistcc.py,comfychair.py} "$work/test/"
cp "$programs"/h_* "$work/"
# Copies, so that the unprivileged user can run them whatever the build tree's modes.
cp "$build_dir/pump" "$build_dir/include_server" "$work/bin/"
cat > "$work/run_check.py" <<'PY'
import resource
import sys
sys.path.insert(0, "test")
import comfychair
import testdistcc
# testdistcc.py's --pump.
testdistcc._server_options = ",lzo,cpp"
(_, hard) = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
left_out = {"Gdb_Case", "GdbOpt1_Case", "GdbOpt2_Case", "GdbOpt3_Case"}
sys.argv = [sys.argv[0]]
comfychair.main([t for t in testdistcc.tests if t.__name__ not in left_out])
PY

as_user=()
if [ "$(id -u)" = 0 ]; then
  chown -R 65534:65534 "$work"
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
# distcc's installcheck PATH: the installation (the distro's distcc, distccd), the build
# directory (the h_* programs), then the restricted path.
path="/usr/bin:$work:/usr/local/bin:/bin"
# The suite's output goes to a file, not a pipe: a process it leaves behind must not keep
# us waiting for end-of-file. NoDetachDaemon_Case leaves one every time: it starts
# `distccd --no-detach` through `/bin/sh -c` and sends SIGTERM to the shell, whose dash
# does not exec the command, so the daemon outlives the case. `timeout` bounds a case
# that hangs.
set +e
(cd "$work" && env -i PATH="$path" HOME="$work" TMPDIR="$work/tmp" LANG=C \
  DISTCC_LOCATION=/usr/bin DISTCC_HOSTS='<invalid>,cpp,lzo' \
  timeout --kill-after=30 "${PUMP_CHECK_TIMEOUT:-1200}" \
  "${as_user[@]}" "$work/bin/pump" /usr/bin/python3 run_check.py >"$work/suite.log" 2>&1 </dev/null)
rc=$?
set -e
out=$(<"$work/suite.log")
# Stop what the run left behind: every process whose working directory or command line
# is under $work (the leaked distccd chdirs into its case's temp directory).
left=()
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  [ "$pid" = $$ ] && continue
  cwd=$(readlink "$d/cwd" 2>/dev/null || true)
  cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null || true)
  if [[ "$cwd" == "$work" || "$cwd" == "$work"/* || "$cmd" == *"$work"/* ]]; then
    left+=("$pid")
  fi
done
if [ ${#left[@]} -gt 0 ]; then
  kill -KILL "${left[@]}" 2>/dev/null || true
  echo "$0: stopped ${#left[@]} process(es) the suite left running" >&2
fi
summary=$(grep -E '^[A-Za-z_0-9]+_Case +' <<<"$out" || true)
bad=$(grep -Ev '_Case +(OK|NOTRUN)' <<<"$summary" || true)
served=$(grep -Eo '[0-9]+ of [0-9]+ translation unit\(s\) served for remote preprocessing' <<<"$out" || true)
read -r n _ total _ <<<"${served:-x of y}"
if [ $rc -eq 0 ] && [ -n "$summary" ] && [ -z "$bad" ] && [ "$n" = "$total" ] && [ "${total:-0}" -gt 0 ] 2>/dev/null; then
  echo "$summary"
  echo "testdistcc.py --pump OK: $(grep -c ' OK' <<<"$summary") cases OK, $(grep -c NOTRUN <<<"$summary") not run; $served"
  exit 0
fi
echo "$out"
echo "$0: testdistcc.py --pump failed (exit $rc)${bad:+; failing: $(awk '{print $1}' <<<"$bad" | tr '\n' ' ')}${served:+; $served}" >&2
exit 1
