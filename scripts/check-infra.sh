#!/usr/bin/env bash
# Static checks of the infrastructure templates (make check-infra). No AWS account needed.
#   1. cfn-lint on every template under infra/, informational rules (I...) included: any
#      error, warning or informational finding fails. A finding that must stay has to be
#      ignored in the template's Metadata (cfn-lint: config: ignore_checks) with a comment
#      explaining why; none is ignored today.
#   2. scripts/check_iam_no_wildcards.py --self-test: proves the policy check can fail.
#   3. scripts/check_iam_no_wildcards.py: no policy statement allows a wildcard or unknown
#      action, Resource "*" where the action supports resource-level permissions, NotAction /
#      NotResource / NotPrincipal in an Allow, or principal "*" without a Condition.
#   4. The SAM translator (aws-sam-translator, from requirements-dev.txt) turns every template
#      with the Serverless transform into plain CloudFormation. (The functions' environment
#      blocks are checked against the settings table by crates/mitigation's tests.)
#   5. `sam validate --lint`, only when asked for with SAM_CLI=/path/to/sam (the AWS SAM CLI is
#      not in requirements-dev.txt: it pins its own boto3; install it in a venv of its own).
# Usage: scripts/check-infra.sh      (tools from ./.venv, see scripts/ensure-venv.sh;
#                                     INFRA_VENV=/path/to/venv uses another virtualenv instead)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ -n "${INFRA_VENV:-}" ]; then
  venv="$INFRA_VENV/bin"
else
  "$root/scripts/ensure-venv.sh"
  venv="$root/.venv/bin"
fi

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

echo "== IAM policy check: self-test"
"$venv/python" scripts/check_iam_no_wildcards.py --self-test

echo "== IAM policy check: ${templates[*]}"
"$venv/python" scripts/check_iam_no_wildcards.py "${templates[@]}"

echo "== SAM translation: ${templates[*]}"
if ! "$venv/python" -c "import samtranslator" 2>/dev/null; then
  echo "check-infra: aws-sam-translator is not installed in $venv; add aws-sam-translator==1.115.0 to requirements-dev.txt" >&2
  exit 1
fi
"$venv/python" - "${templates[@]}" <<'PY'
import json
import sys

import boto3
from cfnlint.decode import decode
from samtranslator import __version__ as sam_version
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator


failed = 0
for path in sys.argv[1:]:
    template, errors = decode(path)
    if errors or template is None:
        print(f"{path}: cannot decode: {errors}")
        failed += 1
        continue
    if "Serverless" not in json.dumps(template.get("Transform", "")):
        print(f"{path}: no Serverless transform, nothing to translate")
        continue
    try:
        # A region for the pseudo parameters; nothing is called. No managed policy map: the
        # templates use inline statements only (check_iam_no_wildcards.py enforces it).
        session = boto3.session.Session(region_name="us-east-1")
        translator = Translator({}, Parser(), boto_session=session)
        packaged = json.loads(json.dumps(template))
        for resource in packaged["Resources"].values():
            # What `sam build` + `sam package` do: the local CodeUri becomes an S3 object.
            if resource.get("Type") == "AWS::Serverless::Function":
                resource["Properties"]["CodeUri"] = "s3://bucket/key.zip"
        out = translator.translate(packaged, parameter_values={})
    except InvalidDocumentException as err:
        for cause in err.causes:
            print(f"{path}: SAM translation error: {cause.message}")
        failed += 1
        continue
    resources = out["Resources"]
    functions = {
        name: r for name, r in resources.items() if r.get("Type") == "AWS::Lambda::Function"
    }
    for name, source in template["Resources"].items():
        if source.get("Type") != "AWS::Serverless::Function":
            continue
        binary = source.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if source.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda" or not binary:
            print(f"{path}: {name}: not built by rust-cargolambda with a Binary")
            failed += 1
            continue
        # Which variables each function gets is checked against the settings table by
        # crates/mitigation's settings tests (make unit-test).
        env = set(functions[name]["Properties"].get("Environment", {}).get("Variables", {}))
        print(f"{path}: {name} ({binary}): {len(env)} environment variables")
    print(f"{path}: translated by aws-sam-translator {sam_version}: {len(resources)} resources")
sys.exit(1 if failed else 0)
PY

sam="${SAM_CLI:-}"
if [ -n "$sam" ]; then
  echo "== sam validate --lint ($("$sam" --version))"
  for t in "${templates[@]}"; do
    # No AWS call is made; the SAM CLI only wants a region to be configured.
    SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" "$sam" validate --lint -t "$t"
  done
fi
echo "check-infra: all checks passed"
