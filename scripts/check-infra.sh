#!/usr/bin/env bash
# Static checks of the infrastructure templates (make check-infra). No AWS account needed.
#   1. cfn-lint on every template under infra/, informational rules (I...) included: any
#      error, warning or informational finding fails. A finding that must stay has to be
#      ignored in the template's Metadata (cfn-lint: config: ignore_checks) with a comment
#      explaining why; none is ignored today.
#   2. scripts/check_iam_no_wildcards.py --self-test: proves the wildcard check can fail.
#   3. scripts/check_iam_no_wildcards.py: no policy statement allows a wildcard action.
# Usage: scripts/check-infra.sh            (the tools come from ./.venv, see scripts/ensure-venv.sh)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/ensure-venv.sh"
venv="$root/.venv/bin"

shopt -s nullglob
templates=(infra/*.yaml infra/*.yml infra/*.json)
if [ "${#templates[@]}" -eq 0 ]; then
  echo "check-infra: no templates under infra/" >&2
  exit 1
fi

echo "== cfn-lint $("$venv/cfn-lint" --version | awk '{print $2}') (errors, warnings and informational): ${templates[*]}"
# Regions: where Device Defender Detect and every resource type used here exist; cfn-lint
# checks resource-type availability and property values per region.
"$venv/cfn-lint" --include-checks I --regions us-east-1 eu-west-1 ap-northeast-1 -- "${templates[@]}"
echo "cfn-lint: no findings"

echo "== IAM wildcard check: self-test"
"$venv/python" scripts/check_iam_no_wildcards.py --self-test

echo "== IAM wildcard check: ${templates[*]}"
"$venv/python" scripts/check_iam_no_wildcards.py "${templates[@]}"
