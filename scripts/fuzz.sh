#!/usr/bin/env bash
# Fuzz violation-core with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh [TARGET] [SECONDS] [extra libFuzzer flags...]
#
# TARGET is decode_event (default), violation_message or handler_input; SECONDS defaults
# to 300. handler_input drives the whole batch handler (crates/mitigation, SDK-free) on the
# in-memory actions of mitigation::testing, and checks the certificate rules
# (mitigation::certificates) on every input. Every target is built the same way (with
# AddressSanitizer and debug assertions), so switching targets rebuilds nothing.
# The seeds are the sample events in events/ (every target that reads whole Lambda events)
# plus the target's own seeds in fuzz/seeds/TARGET, if any; they are copied into
# fuzz/corpus/TARGET (gitignored), which keeps what the fuzzer finds between runs; crashes
# land in fuzz/artifacts/TARGET.
# Runs one fuzzing process only (no -jobs/-workers): the machine is shared.
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address, ...); RUSTC_BOOTSTRAP=1
# lets the stable toolchain accept them. Install once with `cargo install cargo-fuzz --locked`.
# The build goes to fuzz/target, away from the workspace's target dir.
#
# Reproduce a crash:  RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...
# Minimise it:        RUSTC_BOOTSTRAP=1 cargo fuzz tmin TARGET fuzz/artifacts/TARGET/crash-...
# (add --debug-assertions to both, as here, or cargo rebuilds everything)
# A minimised crash that is a real bug is kept in fuzz/regressions/TARGET/ and fed back
# as a seed on every run.
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
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

corpus="fuzz/corpus/$target"
seeds="fuzz/seeds/$target"
mkdir -p "$corpus" "$seeds"
if [[ "$target" != violation_message ]]; then
    cp -n -- events/*.json "$corpus"/
fi
cp -n -- "$seeds"/* "$corpus"/ 2>/dev/null || true
if [[ -d "fuzz/regressions/$target" ]]; then
    cp -n -- "fuzz/regressions/$target"/* "$corpus"/ 2>/dev/null || true
fi

build_flags=(--debug-assertions)

export RUSTC_BOOTSTRAP=1
exec cargo fuzz run "${build_flags[@]}" "$target" "$corpus" "$seeds" -- \
    -max_total_time="$seconds" \
    -dict=fuzz/dict/json.dict \
    -timeout=10 \
    -print_final_stats=1 \
    "$@"
