#!/usr/bin/env bash
# Check that Lambda bootstrap binaries run on provided.al2023, whose glibc is 2.34: fail when a
# binary requires a GLIBC_x.y symbol version newer than that (e.g. built with the host's
# toolchain on a newer distribution instead of `cargo lambda build`, which links through zig
# against an old glibc).
#
# Usage: scripts/check-bootstrap-glibc.sh [BOOTSTRAP ...]
#   default: the bootstrap of every function under $CARGO_TARGET_DIR/lambda/ (target/ under
#   the repository root when CARGO_TARGET_DIR is unset), what `cargo lambda build --release`
#   produces. Paths given on
#   the command line are relative to the current directory. MAX_GLIBC=2.34 can be overridden.
# Reads the ELF version-needs section with readelf (works for x86_64 and arm64 binaries on any
# host); falls back to objdump -T when readelf is missing. Exit 0 when every file passes.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
max_allowed="${MAX_GLIBC:-2.34}"

if [ "$#" -eq 0 ]; then
  lambda_dir="${CARGO_TARGET_DIR:-$root/target}/lambda"
  shopt -s nullglob
  set -- "$lambda_dir"/*/bootstrap
  shopt -u nullglob
  if [ "$#" -eq 0 ]; then
    echo "check-bootstrap-glibc: no bootstrap under $lambda_dir (run cargo lambda build --release first)" >&2
    exit 2
  fi
fi

if command -v readelf >/dev/null 2>&1; then
  tool=readelf
elif command -v objdump >/dev/null 2>&1; then
  tool=objdump
else
  echo "check-bootstrap-glibc: neither readelf nor objdump found (apt-get install binutils)" >&2
  exit 2
fi

# GLIBC_x.y[.z] versions a binary needs, one per line, sorted, unique.
glibc_versions() {
  if [ "$tool" = readelf ]; then
    readelf --version-info --wide "$1"
  else
    objdump -T "$1"
  fi | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/^GLIBC_//' | sort -uV
}

# 0 when version $1 <= version $2.
version_le() {
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]
}

failed=0
for file in "$@"; do
  if [ ! -f "$file" ]; then
    echo "FAIL $file: not found (run: make build)"
    failed=1
    continue
  fi
  if ! head -c 4 "$file" | grep -q 'ELF'; then
    echo "FAIL $file: not an ELF binary"
    failed=1
    continue
  fi
  machine="$(readelf -h "$file" 2>/dev/null | awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}')"
  versions="$(glibc_versions "$file")"
  if [ -z "$versions" ]; then
    echo "ok   $file (${machine:-unknown machine}): no GLIBC symbol versions (static or musl)"
    continue
  fi
  newest="$(tail -n1 <<<"$versions")"
  too_new="$(while read -r v; do version_le "$v" "$max_allowed" || echo "GLIBC_$v"; done <<<"$versions" | tr '\n' ' ' | sed 's/ $//')"
  if [ -n "$too_new" ]; then
    echo "FAIL $file (${machine:-unknown machine}): needs GLIBC_$newest > $max_allowed (provided.al2023); too new: $too_new"
    failed=1
  else
    echo "ok   $file (${machine:-unknown machine}): newest GLIBC_$newest <= $max_allowed"
  fi
done
exit "$failed"
