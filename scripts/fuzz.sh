#!/usr/bin/env bash
# Fuzz violation-core with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh [TARGET] [SECONDS] [extra libFuzzer flags...]
#
# TARGET is decode_event (default) or violation_message; SECONDS defaults to 300.
# The seeds in fuzz/seeds/TARGET are copied into fuzz/corpus/TARGET (gitignored), which
# keeps what the fuzzer finds between runs; crashes land in fuzz/artifacts/TARGET.
# Runs one fuzzing process only (no -jobs/-workers): the machine is shared.
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address, ...); RUSTC_BOOTSTRAP=1
# lets the stable toolchain accept them. Install once with `cargo install cargo-fuzz`.
# The build goes to fuzz/target, away from the workspace's target dir.
#
# Reproduce a crash:  RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...
# Minimise it:        RUSTC_BOOTSTRAP=1 cargo fuzz tmin TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail

target="${1:-decode_event}"
seconds="${2:-300}"
shift $(( $# < 2 ? $# : 2 ))

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ ! -f "fuzz/fuzz_targets/$target.rs" ]]; then
    echo "unknown target '$target'; have: $(cd fuzz/fuzz_targets && ls -- *.rs | sed 's/\.rs$//' | tr '\n' ' ')" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

corpus="fuzz/corpus/$target"
seeds="fuzz/seeds/$target"
mkdir -p "$corpus"
cp -n -- "$seeds"/* "$corpus"/ 2>/dev/null || true

export RUSTC_BOOTSTRAP=1
exec cargo fuzz run --debug-assertions "$target" "$corpus" "$seeds" -- \
    -max_total_time="$seconds" \
    -dict=fuzz/dict/json.dict \
    -timeout=10 \
    -print_final_stats=1 \
    "$@"
