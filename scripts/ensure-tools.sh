#!/usr/bin/env bash
# Install the cargo tools `make lint` needs into ./.tools (not ~/.cargo, so a clean machine and
# a developer's machine get the same version). Idempotent; prints the tool's path.
#   cargo-machete: unused dependencies.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
version="0.9.2"
bin="$tools/bin/cargo-machete"
if [ ! -x "$bin" ] || ! "$bin" --version 2>/dev/null | grep -q "$version"; then
  echo "ensure-tools: installing cargo-machete $version into $tools" >&2
  # Its own target dir: the tool's build must not evict the project's artifacts.
  CARGO_TARGET_DIR="$tools/build" cargo install --quiet --locked --root "$tools" --version "$version" cargo-machete >&2
  rm -rf "$tools/build"
fi
echo "$bin"
