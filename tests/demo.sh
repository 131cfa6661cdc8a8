#!/usr/bin/env bash
# The main job, end to end: builds the workspace, installs the distro's distcc if it is
# missing, starts a distccd on 127.0.0.1, runs `pump make -j4` over the sample C/C++
# project in tests/sample-project, and shows which translation units were preprocessed
# and compiled on the server. Everything it starts is stopped, and its temp dir removed,
# when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

packages=(distcc gcc g++ make)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "demo: installing ${missing[*]}" >&2
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo build --release --workspace --bins
bin=$top/target/release

work=$(mktemp -d "${TMPDIR:-/tmp}/pump-demo.XXXXXX")
chmod 1777 "$work"
pidfile=$work/distccd.pid
cleanup() {
  [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A port nothing listens on (a connection to it is refused).
for port in $(shuf -i 20000-60000 -n 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
done
user=(); [ "$(id -u)" = 0 ] && user=(--user nobody)
distccd --daemon --allow 127.0.0.0/8 --listen 127.0.0.1 --port "$port" --jobs 4 \
  --pid-file "$pidfile" --log-file "$work/distccd.log" --log-level info "${user[@]}"
deadline=$((SECONDS + 20))
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  ((SECONDS < deadline)) || { echo "demo: distccd did not start; its log:" >&2; cat "$work/distccd.log" >&2; exit 1; }
  sleep 0.05
done
echo "demo: distccd listening on 127.0.0.1:$port"

cp -r tests/sample-project "$work/project"
cd "$work/project"
export DISTCC_HOSTS="127.0.0.1:$port/4,cpp,lzo" DISTCC_FALLBACK=0
echo "demo: DISTCC_HOSTS='$DISTCC_HOSTS' pump make -j4"
"$bin/pump" make -j4
./sample

echo
echo "demo: jobs distccd ran (a pump-mode job is one where distccd preprocessed and then"
echo "demo: fixed up the debug info, logged as dcc_fix_debug_info):"
grep -E 'dcc_fix_debug_info|COMPILE_OK' "$work/distccd.log" | sed 's/^distccd\[[0-9]*\] /  /'
total=$(grep -c ' COMPILE_OK ' "$work/distccd.log" || true)
pumped=$(grep -c 'dcc_fix_debug_info' "$work/distccd.log" || true)
echo "demo: $total translation units compiled on 127.0.0.1:$port, $pumped of them in pump mode"
