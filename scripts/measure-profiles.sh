#!/usr/bin/env bash
# Build quarantine-group and quarantine-shadow under each candidate release profile and print
# their sizes; with --bench, also run the benchmark (lambda-bench --quick) on each build for
# cold start and CPU per record. Used to choose [profile.release] (see BENCHMARKS.md).
#   scripts/measure-profiles.sh [--bench] [VARIANT...]
# --bench uses the lambda-bench binary at $LAMBDA_BENCH (default: the release one, built by
# `make bench`); its output goes to $CARGO_TARGET_DIR/profiles/VARIANT/bench.txt.
# Each variant builds in its own directory under $CARGO_TARGET_DIR/profiles (a full release
# build of the AWS SDK each: several minutes on 2 cores).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
base="${CARGO_TARGET_DIR:-$root/target}/profiles"
bench=false
if [ "${1:-}" = "--bench" ]; then bench=true; shift; fi

# name: the --config overrides of [profile.release] (strip, panic=unwind always).
declare -A variants=(
  [thin-o3-cu16]='profile.release.lto="thin" profile.release.codegen-units=16 profile.release.opt-level=3'
  [fat-o3-cu1]='profile.release.lto="fat" profile.release.codegen-units=1 profile.release.opt-level=3'
  [fat-os-cu1]='profile.release.lto="fat" profile.release.codegen-units=1 profile.release.opt-level="s"'
  [fat-oz-cu1]='profile.release.lto="fat" profile.release.codegen-units=1 profile.release.opt-level="z"'
  [thin-os-cu16]='profile.release.lto="thin" profile.release.codegen-units=16 profile.release.opt-level="s"'
)
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(thin-o3-cu16 fat-o3-cu1 fat-os-cu1 fat-oz-cu1 thin-os-cu16)

printf '%-14s %12s %12s %10s\n' variant group-MiB shadow-MiB build-s
for name in "${names[@]}"; do
  args=()
  for kv in ${variants[$name]}; do args+=(--config "$kv"); done
  dir="$base/$name"
  start=$(date +%s)
  CARGO_TARGET_DIR="$dir" cargo build --quiet --release "${args[@]}" -p quarantine-group -p quarantine-shadow
  secs=$(( $(date +%s) - start ))
  size() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.2f", b / 1048576 }'; }
  printf '%-14s %12s %12s %10s\n' "$name" "$(size "$dir/release/quarantine-group")" \
    "$(size "$dir/release/quarantine-shadow")" "$secs"
  if $bench; then
    "${LAMBDA_BENCH:-${CARGO_TARGET_DIR:-$root/target}/release/lambda-bench}" --quick \
      --group "$dir/release/quarantine-group" --shadow "$dir/release/quarantine-shadow" \
      > "$dir/bench.txt" 2>&1 || echo "  (bench failed: $dir/bench.txt)"
  fi
done
