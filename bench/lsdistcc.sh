#!/usr/bin/env bash
# Benchmark: our lsdistcc side by side with the distro's /usr/bin/lsdistcc, probing the 64
# loopback addresses 127.0.0.1-127.0.0.64 with -c150 (issue 2). Two of them run a real
# distccd (127.0.0.1 and 127.0.0.2, one port); the other 62 are set up in one of two ways:
#
#   refused   nothing listens: loopback answers each connect with a reset at once, so no
#             connect waits for its timeout and the run measures pure overhead;
#   timeout   each address has a listener whose accept queue is full (backlog 0 plus one
#             connection never accepted), so the kernel drops the SYNs and every connect
#             runs into the 150 ms timeout. This is "one connect timeout" on loopback: the
#             target is a wall time within 1.2 x 150 ms = 180 ms.
#
# Usage: bench/lsdistcc.sh [refused|timeout|both]    (default: both)
#   LSDISTCC=path/to/our/lsdistcc (default target/release/lsdistcc), RUNS=11.
# Needs hyperfine (apt-get install hyperfine), python3 and the distro's distcc package.
# Only 127.0.0.0/8 is contacted. Prints hyperfine's table; medians are in the JSON it
# writes to $OUT (default ${TMPDIR:-/tmp}/lsdistcc-bench.<mode>.json).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-both}
ours=${LSDISTCC:-target/release/lsdistcc}
runs=${RUNS:-11}
[ -x "$ours" ] || { echo "$0: $ours is not built (cargo build --release -p lsdistcc)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "$0: needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/lsdistcc-bench.XXXXXX")
pids=()      # distccd process groups (each started with setsid)
sink_pid=   # the SYN-sink helper
cleanup() {
  for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || true; done
  [ -z "$sink_pid" ] || kill "$sink_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
chmod 1777 "$work"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user=(); [ "$(id -u)" = 0 ] && user=(--user nobody)

start_distccd() { # address
  local log="$work/distccd.$1.log"
  setsid distccd --no-detach --daemon --log-stderr --allow 127.0.0.0/8 --listen "$1" \
    --port "$port" --jobs 2 --log-level info "${user[@]}" 2>"$log" </dev/null &
  pids+=("$!")
  # Ready when its log says so (no sleeping).
  timeout 20 grep -q -m1 'listening on' <(tail -F "$log" 2>/dev/null) ||
    { echo "$0: distccd on $1 did not start:" >&2; cat "$log" >&2; exit 1; }
}
start_distccd 127.0.0.1
start_distccd 127.0.0.2

hosts=()
for i in $(seq 1 64); do hosts+=("127.0.0.$i"); done

run_mode() { # refused|timeout
  if [ "$1" = timeout ]; then
    # The SYN sinks: 62 full-backlog listeners, kept open until stdin closes.
    coproc SINKS { exec python3 -c '
import socket, sys
port = int(sys.argv[1])
keep = []
for i in range(3, 65):
    l = socket.socket()
    l.bind(("127.0.0.%d" % i, port))
    l.listen(0)
    c = socket.create_connection(("127.0.0.%d" % i, port))
    keep += [l, c]
print("ready", flush=True)
sys.stdin.read()
' "$port"; }
    sink_pid=$SINKS_PID
    read -r ready <&"${SINKS[0]}"
    [ "$ready" = ready ] || { echo "$0: SYN sinks did not start" >&2; exit 1; }
  fi
  local args=(-c150 "-r$port" "${hosts[@]}")
  # Same hosts reported by both (order aside).
  diff <("$ours" "${args[@]}" | sort) <(/usr/bin/lsdistcc "${args[@]}" | sort) ||
    { echo "$0: outputs differ" >&2; exit 1; }
  echo "== $1: $("$ours" "${args[@]}" | tr '\n' ' ')"
  local out=${OUT:-${TMPDIR:-/tmp}/lsdistcc-bench.$1.json}
  hyperfine -N --warmup 1 --runs "$runs" --export-json "$out" \
    -n ours "$ours ${args[*]}" -n distro "/usr/bin/lsdistcc ${args[*]}"
  python3 - "$out" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("median %-6s %7.1f ms  (min %.1f, max %.1f, %d runs)" % (
        r["command"], r["median"] * 1000, r["min"] * 1000, r["max"] * 1000, len(r["times"])))
EOF
  if [ -n "$sink_pid" ]; then
    kill "$sink_pid" 2>/dev/null || true
    wait "$sink_pid" 2>/dev/null || true
    sink_pid=
  fi
}

case $mode in
  refused|timeout) run_mode "$mode" ;;
  both) run_mode refused; run_mode timeout ;;
  *) echo "usage: $0 [refused|timeout|both]" >&2; exit 1 ;;
esac
