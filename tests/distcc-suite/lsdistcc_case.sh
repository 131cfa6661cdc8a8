#!/usr/bin/env bash
# Runs distcc's own `Lsdistcc_Case` (test/testdistcc.py, spec D.1) against our lsdistcc.
#
# Usage: tests/distcc-suite/lsdistcc_case.sh BUILD_DIR
#   BUILD_DIR holds our `lsdistcc` (e.g. target/debug); it goes first in PATH, so the case
#   runs our binary with the distro's distccd as the daemon.
#
# The test files come from the distro's source package of distcc, fetched by source.sh
# (nothing third-party is committed; see there for the cache directory).
#
# Adaptations, none of them to the case itself:
# - `--sysroot` is removed from the daemon command line, as Debian's distccd 3.4 lacks it
#   (HEAD's testdistcc.py passes it; the 3.4 tarball does not, so this is usually a no-op);
# - as root, the case runs as uid/gid 65534 (setpriv): distccd run as root drops
#   privileges and then cannot write the test's log files.
# Exit status: 0 when the case reports OK; otherwise 1, with the suite's output.
set -euo pipefail

build_dir=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
[ -x "$build_dir/lsdistcc" ] || { echo "$0: no lsdistcc in $build_dir" >&2; exit 1; }
src=$("$(dirname "$0")/source.sh")
suite=$src/test/testdistcc.py
echo "$0: using $(basename "$(dirname "$(dirname "$suite")")")/test/testdistcc.py" >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/lsdistcc-case.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$(dirname "$suite")"/{testdistcc.py,comfychair.py} "$work/"
sed -i 's/ --sysroot [^ "]*//; s/ --sysroot=[^ "]*//' "$work/testdistcc.py"
mkdir "$work/bin"
# A copy, so that the unprivileged user can run it whatever the build tree's modes.
cp "$build_dir/lsdistcc" "$work/bin/lsdistcc"
cat > "$work/run_case.py" <<'EOF'
import sys
import comfychair
import testdistcc
sys.argv = [sys.argv[0], "--verbose"]
comfychair.main([testdistcc.Lsdistcc_Case])
EOF

as_user=()
if [ "$(id -u)" = 0 ]; then
  chown -R 65534:65534 "$work"
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
path="$work/bin:/usr/local/bin:/usr/bin:/bin"
found=$(env PATH="$path" sh -c 'command -v lsdistcc')
[ "$found" = "$work/bin/lsdistcc" ] || { echo "$0: PATH finds $found, not ours" >&2; exit 1; }

set +e
out=$(cd "$work" && env -i PATH="$path" HOME="$work" TMPDIR="$work" LANG=C \
  "${as_user[@]}" /usr/bin/python3 run_case.py 2>&1)
rc=$?
set -e
if [ $rc -eq 0 ] && grep -Eq '^Lsdistcc_Case +OK' <<<"$out"; then
  echo "Lsdistcc_Case OK (our lsdistcc: $build_dir/lsdistcc)"
  exit 0
fi
echo "$out"
echo "$0: Lsdistcc_Case failed (exit $rc)" >&2
exit 1
