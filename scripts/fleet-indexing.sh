#!/usr/bin/env bash
# Turn on fleet indexing with Device Defender violations and create a dynamic thing group of the
# things in violation (seed 000). CloudFormation cannot do the first part: there is no resource
# type for the indexing configuration. The template can create the group itself
# (CreateViolationsDynamicGroup=true) once indexing is on; use either that or --group here.
#
# Usage:
#   scripts/fleet-indexing.sh [options]
#     --profile NAME     security profile (default QuarantineDetect, the template's default)
#     --behaviors "A B"  behavior names for the group query
#                        (default "MessagesSent DisconnectDuration ChildProcesses")
#     --group NAME       also create the dynamic thing group NAME (skipped when it exists)
#     --region REGION    passed to every aws call (default: the CLI's configuration)
#     --dry-run          print the mutating aws calls instead of running them
#   e.g. scripts/fleet-indexing.sh --group DeviceDefenderViolations
#
# Needs the AWS CLI (v1 or v2), python3, and iot:GetIndexingConfiguration,
# iot:UpdateIndexingConfiguration, iot:DescribeIndex, iot:SearchIndex, iot:DescribeThingGroup,
# iot:CreateDynamicThingGroup. The current thing indexing configuration is kept (shadow,
# connectivity, named shadows, custom fields, filter); only thingIndexingMode (REGISTRY when it is
# OFF) and deviceDefenderIndexingMode=VIOLATIONS are changed. Re-running is harmless.
# Fleet indexing is billed per index update and per query (docs/deploy.md, cost notes).
set -euo pipefail

profile=QuarantineDetect
behaviors="MessagesSent DisconnectDuration ChildProcesses"
group=""
dry_run=false
aws_args=()

while [ "$#" -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --behaviors) behaviors="$2"; shift 2 ;;
    --group) group="$2"; shift 2 ;;
    --region) aws_args+=(--region "$2"); shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "fleet-indexing: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if ! [[ "$profile" =~ ^[a-zA-Z0-9_]+$ ]]; then
  echo "fleet-indexing: profile name '$profile' must be letters, digits and '_' to be queryable" >&2
  exit 2
fi

iot() { aws "${aws_args[@]}" iot "$@"; }
mutate() {
  if $dry_run; then
    printf 'dry-run: aws'; printf ' %q' "${aws_args[@]}" iot "$@"; printf '\n'
  else
    iot "$@"
  fi
}

# 1. Indexing configuration: merge VIOLATIONS into what is configured now.
current="$(iot get-indexing-configuration --output json)"
wanted="$(python3 -c '
import json, sys
cfg = json.loads(sys.argv[1]).get("thingIndexingConfiguration") or {}
cfg.pop("managedFields", None)  # read-only, reported by the service
if cfg.get("thingIndexingMode", "OFF") == "OFF":
    cfg["thingIndexingMode"] = "REGISTRY"
cfg["deviceDefenderIndexingMode"] = "VIOLATIONS"
print(json.dumps(cfg, separators=(",", ":"), sort_keys=True))
' "$current")"
already="$(python3 -c '
import json, sys
cfg = json.loads(sys.argv[1]).get("thingIndexingConfiguration") or {}
print("yes" if cfg.get("deviceDefenderIndexingMode") == "VIOLATIONS" and cfg.get("thingIndexingMode", "OFF") != "OFF" else "no")
' "$current")"

if [ "$already" = yes ]; then
  echo "fleet-indexing: thing indexing already includes Device Defender violations"
else
  echo "fleet-indexing: thing indexing configuration -> $wanted"
  mutate update-indexing-configuration --thing-indexing-configuration "$wanted"
  if ! $dry_run; then
    # The index rebuilds after a change; dynamic groups and queries need it ACTIVE.
    for _ in $(seq 1 60); do
      status="$(iot describe-index --index-name AWS_Things --query indexStatus --output text 2>/dev/null || echo MISSING)"
      echo "fleet-indexing: index AWS_Things is $status"
      [ "$status" = ACTIVE ] && break
      sleep 10
    done
    [ "$status" = ACTIVE ] || { echo "fleet-indexing: index not ACTIVE after 10 minutes; re-run later" >&2; exit 1; }
  fi
fi

# 2. Query for things in violation of any of the behaviors.
query=""
for b in $behaviors; do
  query="${query:+$query OR }deviceDefender.${profile}.${b}.inViolation:true"
done
echo "fleet-indexing: query: $query"

# 3. Optional dynamic thing group.
if [ -n "$group" ]; then
  if existing="$(iot describe-thing-group --thing-group-name "$group" --query queryString --output text 2>/dev/null)"; then
    echo "fleet-indexing: thing group $group exists (query: $existing); not changed"
  else
    mutate create-dynamic-thing-group --thing-group-name "$group" --query-string "$query" \
      --thing-group-properties "{\"thingGroupDescription\":\"Things in violation of security profile $profile\"}"
  fi
fi

# 4. What the index shows now (empty until Device Defender has reported violations).
if ! $dry_run; then
  echo "fleet-indexing: things in violation now:"
  iot search-index --index-name AWS_Things --query-string "$query" \
    --query 'things[].[thingName, deviceDefender]' --output json
fi
