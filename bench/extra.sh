#!/usr/bin/env bash
# More code bases than the suite's four, correctness first. Each is fetched from the
# distro's source packages (nothing third-party is kept here), its compile commands are
# prepared (cmake's compile_commands.json, or `make -n`), and then:
#   over the socket  pump-bench --recall, our include server and distcc 3.4's Python one
#                    side by side: every TU's reply against gcc -MM (recall), fall-backs,
#                    files shipped, and the cost rows (cold first request over 7 fresh
#                    servers, warm median);
#   remote build     the whole code base built with our `pump make -j4` against a loopback
#                    distccd, DISTCC_FALLBACK=0 (a closure missing a header fails the build):
#                    pump's summary of the TUs served in pump mode, distccd's COMPILE_OK
#                    count, and every object against a local build of the same tree in the
#                    same place, after objcopy --strip-debug.
#
#   bench/extra.sh [ROOT]    (ROOT as in bench/corpora.sh; the code bases go to ROOT/extra)
#
# EXTRA_CORPORA narrows the list (default: every code base recipe() knows, 23). Prints one
# markdown table (also kept row by row in ROOT/extra/results/rows.md, as each code base
# ends); the raw JSON and the logs stay in ROOT/extra/results.
# Exit status: 0 when every TU of every code base was covered (no missed file, no fall-back,
# every TU served in pump mode, the build done and every object equal), 1 otherwise, 2 on
# error.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
root=$(bench/corpora.sh "${1:-}" | tail -1)
ref=${PUMP_REFERENCE:-$root/reference-pump}
[ -x "$ref/distcc-pump" ] || bash "$top/../shared/bench/reference-pump.sh" "$ref" >/dev/null
cargo build --release --bins -p pump-bench -p include-server-launcher -p pump >&2
bin=$top/target/release
extra=$root/extra
mkdir -p "$extra/results"
cd "$extra"

fetch() { # SOURCE_PACKAGE DIR
  local name=$1 dir=$2 tarball
  [ -d "$dir" ] && return 0
  ls "${name}"_*.orig.tar.* >/dev/null 2>&1 || apt-get source -qq --download-only "$name" >/dev/null 2>&1 || true
  tarball=$(ls "${name}"_*.orig.tar.* | head -1)
  mkdir -p "$dir.tmp"
  tar -xf "$tarball" -C "$dir.tmp" --strip-components=1
  mv "$dir.tmp" "$dir"
}

# Per code base: the source package, the directory cmake or make runs in, and how.
#   cmake ARGS...  configure with cmake (compile_commands.json; a second tree for the build)
#   make TARGET    `make -n TARGET` in that directory (after ./configure when there is one)
recipe() {
  case $1 in
    lua5.4) echo "lua5.4 . make linux" ;;
    zlib) echo "zlib . make all" ;;
    expat) echo "expat expat cmake" ;;
    lz4) echo "lz4 build/cmake cmake" ;;
    snappy) echo "snappy . cmake -DSNAPPY_BUILD_TESTS=OFF -DSNAPPY_BUILD_BENCHMARKS=OFF" ;;
    tinyxml2) echo "tinyxml2 . cmake" ;;
    yaml-cpp) echo "yaml-cpp . cmake -DYAML_CPP_BUILD_TESTS=OFF" ;;
    abseil) echo "abseil . cmake -DABSL_PROPAGATE_CXX_STD=ON" ;;
    googletest) echo "googletest . cmake" ;;
    freetype) echo "freetype . cmake -DFT_DISABLE_HARFBUZZ=ON -DFT_DISABLE_BROTLI=ON -DFT_DISABLE_PNG=ON -DFT_DISABLE_BZIP2=ON" ;;
    libpng1.6) echo "libpng1.6 . cmake -DPNG_TESTS=OFF" ;;
    pcre2) echo "pcre2 . cmake" ;;
    libjsoncpp) echo "libjsoncpp . cmake -DJSONCPP_WITH_TESTS=OFF -DJSONCPP_WITH_POST_BUILD_UNITTEST=OFF" ;;
    fmtlib) echo "fmtlib . cmake -DFMT_TEST=OFF -DFMT_DOC=OFF" ;;
    libuv1) echo "libuv1 . cmake -DLIBUV_BUILD_TESTS=OFF" ;;
    c-ares) echo "c-ares . cmake" ;;
    libevent) echo "libevent . cmake -DEVENT__DISABLE_OPENSSL=ON -DEVENT__DISABLE_MBEDTLS=ON -DEVENT__DISABLE_TESTS=ON -DEVENT__DISABLE_REGRESS=ON -DEVENT__DISABLE_BENCHMARK=ON" ;;
    jansson) echo "jansson . cmake -DJANSSON_BUILD_DOCS=OFF" ;;
    pugixml) echo "pugixml . cmake" ;;
    curl) echo "curl . cmake -DBUILD_CURL_EXE=OFF -DCURL_ENABLE_SSL=OFF -DUSE_LIBIDN2=OFF -DCURL_USE_LIBPSL=OFF -DCURL_USE_LIBSSH2=OFF -DBUILD_TESTING=OFF" ;;
    libwebp) echo "libwebp . cmake" ;;
    libjpeg-turbo) echo "libjpeg-turbo . cmake -DWITH_SIMD=OFF" ;;
    libyaml) echo "libyaml . cmake" ;;
    *) echo "bench/extra.sh: no recipe for $1" >&2; exit 2 ;;
  esac
}

# Builds the code base in $build (the current one's $sub, $kind and $args), locally or,
# given the launcher `distcc`, with our pump.
compile() { # [LAUNCHER]
  cd "$build/$sub"
  if [ "$kind" = cmake ]; then
    cmake -S . -B objs ${1:+"-DCMAKE_C_COMPILER_LAUNCHER=$1" "-DCMAKE_CXX_COMPILER_LAUNCHER=$1"} $args >/dev/null
    cd objs && ${1:+"$bin/pump"} make -j4
  elif [ -n "${1:-}" ]; then
    "$bin/pump" make -j4 CC="$1 gcc" CXX="$1 g++" $args
  else
    make -j4 $args
  fi
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
daemon=$(mktemp -d "${TMPDIR:-/tmp}/extra-distccd.XXXXXX")
chmod 777 "$daemon"
distccd --daemon --allow 127.0.0.0/8 --listen 127.0.0.1 --port "$port" --jobs 4 \
  --pid-file "$daemon/pid" --log-file "$daemon/log" --log-level info --user nobody
trap 'kill "$(cat "$daemon/pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$daemon"' EXIT
for _ in $(seq 200); do grep -qs 'daemon started' "$daemon/log" && break; sleep 0.05; done

# One code base, $1: fetched, prepared, asked over the socket, built twice and compared.
# Prints its table row after "ok||" or "FAIL||".
measure() {
  local c=$1
  read -r pkg sub kind args <<<"$(recipe "$c")"
  fetch "$pkg" "$c"
  dir=$(realpath "$c/$sub")
  # The commands pump-bench asks, and a clean tree for the remote build.
  if [ "$kind" = cmake ]; then
    [ -s "$dir/ccj/compile_commands.json" ] ||
      cmake -S "$dir" -B "$dir/ccj" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON $args >/dev/null
    src=(--compile-commands "$dir/ccj/compile_commands.json")
  else
    if [ ! -s "$dir/make-n.txt" ]; then
      [ -x "$dir/configure" ] && (cd "$dir" && ./configure >/dev/null)
      (cd "$dir" && make -n $args > make-n.txt)
    fi
    # lua's Makefile runs its compiles in src/.
    cdir=$dir; [ -d "$dir/src" ] && [ -f "$dir/src/lua.c" ] && cdir=$dir/src
    src=(--make-dry-run "$dir/make-n.txt" --directory "$cdir")
  fi
  "$bin/pump-bench" --label "$c" --recall --cold-runs 7 --warm-passes 3 --min-warm-samples 60 \
    --clients 1,4 "${src[@]}" \
    --ours "$bin/include_server" --reference "$ref" --json "$extra/results/bench-$c.json" >&2

  # The whole code base, built twice in the same place (so that paths compiled into the
  # objects agree): first locally with the plain compilers, its objects kept aside, then
  # from a fresh copy with our pump against the loopback distccd.
  build=$extra/build-$c
  kept=$extra/local-objects-$c
  rm -rf "$build" "$kept"
  cp -a "$c" "$build"
  (compile) >"$extra/results/local-$c.log" 2>&1 || true
  mkdir -p "$kept"
  (cd "$build" && find . -name '*.o' -exec cp --parents {} "$kept/" \;)
  rm -rf "$build"
  cp -a "$c" "$build"
  mkdir -p "$build/.distcc"
  log=$extra/results/build-$c.log
  before=$(grep -c COMPILE_OK "$daemon/log" || true)
  (
    export DISTCC_HOSTS="127.0.0.1:$port/4,cpp,lzo" DISTCC_FALLBACK=0 DISTCC_DIR=$build/.distcc
    compile distcc
  ) >"$log" 2>&1 && built=yes || built=no
  # Every object of the local build against the pump build's, debug sections stripped.
  compared=0 equal=0
  while IFS= read -r -d '' o; do
    rel=${o#"$kept"/}
    [ -f "$build/$rel" ] || continue
    compared=$((compared + 1))
    objcopy --strip-debug "$o" "$daemon/a.o" && objcopy --strip-debug "$build/$rel" "$daemon/b.o" &&
      cmp -s "$daemon/a.o" "$daemon/b.o" && equal=$((equal + 1))
  done < <(find "$kept" -name '*.o' -print0)
  jobs=$(( $(grep -c COMPILE_OK "$daemon/log" || true) - before ))
  served=$(grep -Eo '[0-9]+ of [0-9]+ translation unit\(s\) served' "$log" | tail -1 || true)
  # The .dsc names the Debian version; a security update's may be missing from the archive
  # (the orig tarball then names the upstream one).
  version=$( (ls "${pkg}"_*.dsc 2>/dev/null || ls "${pkg}"_*.orig.tar.*) | head -1 |
    sed 's/\.dsc$//; s/\.orig\.tar\..*$//')
  python3 - "$extra/results/bench-$c.json" "$c" "$version" "$built" "$jobs" "$served" "$compared" "$equal" <<'PY'
import json, sys
path, name, version, built, jobs, served, compared, equal = sys.argv[1:]
r = {x["implementation"]: x for x in json.load(open(path))}
o, p = r["rust"], r["python"]
ratio = lambda a, b: "%.1fx" % (b / a) if a else "-"
n, _, total = (served.split()[:3] + ["", "", ""])[:3]
good = (o["recall_misses"] == 0 and o["fallbacks"] == 0 and o["errors"] == 0 and built == "yes"
        and n == total and n != "" and int(n) > 0 and int(compared) > 0 and compared == equal)
print("%s|| %s (%s) | %d | %d / %d | %d / %d | %d / %d | %.2f / %.2f ms (%s) | %.2f ms (%s) | %.3f / %.3f ms (%s) | %s, %s, %s distccd jobs | %s of %s |" % (
    "ok" if good else "FAIL", name, version, o["requests"], o["recall_misses"], p["recall_misses"],
    o["fallbacks"], p["fallbacks"], o["files_shipped"], p["files_shipped"],
    o["cold_first_ms"], p["cold_first_ms"], ratio(o["cold_first_ms"], p["cold_first_ms"]),
    o["cold_saved_probes_ms"], ratio(o["cold_saved_probes_ms"], p["cold_first_ms"]),
    o["warm_median_ms"], p["warm_median_ms"], ratio(o["warm_median_ms"], p["warm_median_ms"]),
    "built" if built == "yes" else "build FAILED", served or "no pump summary", jobs, equal, compared))
PY
}

ok=0
all="lua5.4 zlib expat lz4 snappy tinyxml2 yaml-cpp abseil googletest freetype libpng1.6 pcre2
  libjsoncpp fmtlib libuv1 c-ares libevent jansson pugixml curl libwebp libjpeg-turbo libyaml"
: >"$extra/results/rows.md"
for c in ${EXTRA_CORPORA:-$all}; do
  # In a subshell of its own, errexit on: a code base that fails to fetch, configure or
  # measure gives a failing row, and the others still run.
  set +e
  (set -e; measure "$c") >"$extra/results/row-$c"
  status=$?
  set -e
  row=$(cat "$extra/results/row-$c")
  [ $status -eq 0 ] && [ -n "$row" ] || row="FAIL|| $c | failed (exit $status; its error is above) | | | | | | | | |"
  [ "${row%%||*}" = ok ] || ok=1
  echo "|${row#*||}" >>"$extra/results/rows.md"
done

echo "| code base (source package) | TUs | replies missing a gcc -MM file rust / python | fall-backs rust / python | files shipped rust / python | cold first request, nothing saved, rust / python | cold, probes saved (rust) | warm median rust / python | our \`pump make -j4\`, DISTCC_FALLBACK=0 | objects equal to the local build's (strip-debug) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
cat "$extra/results/rows.md"
exit $ok
