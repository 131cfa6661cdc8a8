#!/usr/bin/env bash
# The whole of git's libgit.a compiled in pump mode (the CI runs a fixed subset): fetches
# git's source package, builds it locally and through `pump make` against a loopback
# distccd with DISTCC_FALLBACK=0, and compares every object after objcopy --strip-debug.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins
cargo test -p e2e --test corpus -- --include-ignored "$@"
