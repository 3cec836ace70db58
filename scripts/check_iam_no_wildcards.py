#!/usr/bin/env python3
"""Fail when a policy statement in an infrastructure template allows a wildcard action.

Usage:
    .venv/bin/python scripts/check_iam_no_wildcards.py [TEMPLATE ...]   # default: infra/*.yaml|yml|json
    .venv/bin/python scripts/check_iam_no_wildcards.py --self-test

Templates are read with cfn-lint's own decoder, so !Ref, !Sub, !If and friends are understood.
Every policy document under a resource's Properties is checked: IAM roles, policies and managed
policies, AWS::Serverless::Function `Policies`, SQS/SNS/S3 resource policies, KMS key policies,
IoT policies (anything holding a `Statement`). Both branches of an Fn::If are checked.

A statement fails when it is not an explicit Deny and
  * an Action contains '*' or '?' anywhere ("*", "iot:*", "iot:Update*"), or
  * it uses NotAction (an Allow with NotAction grants everything else), or
  * an Action is not a literal (a !Ref to a parameter could hold anything).
A permission this check cannot read also fails: a ManagedPolicyArns entry, a managed policy
name or a SAM policy template in a function's Policies. Grant permissions with inline
statements instead. Exit status 0 when clean, 1 on findings, 2 on unreadable templates.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cfnlint.decode import decode, decode_str

ROOT = Path(__file__).resolve().parent.parent
# Keys whose value may be a policy document written as a JSON string.
DOCUMENT_KEYS = {"PolicyDocument", "AssumeRolePolicyDocument", "KeyPolicy", "PolicyText"}
NO_VALUE = {"Ref": "AWS::NoValue"}


@dataclass
class Report:
    statements: int = 0
    findings: list[str] = field(default_factory=list)


def line_of(node) -> str:
    mark = getattr(node, "start_mark", None)
    return f"{mark.line + 1}" if mark is not None else "?"


def branches(value):
    """Literal alternatives of a value: Fn::If is expanded, AWS::NoValue dropped."""
    if isinstance(value, dict) and len(value) == 1 and "Fn::If" in value:
        args = value["Fn::If"]
        if isinstance(args, list) and len(args) == 3:
            for branch in args[1:]:
                yield from branches(branch)
            return
    if value == NO_VALUE:
        return
    yield value


def action_problems(action) -> list[str]:
    """Why one Action entry is not acceptable in an Allow statement (empty: fine)."""
    problems = []
    for alt in branches(action):
        if isinstance(alt, list):
            for item in alt:
                problems += action_problems(item)
        elif isinstance(alt, str):
            if "*" in alt or "?" in alt:
                problems.append(f"wildcard action {alt!r}")
        elif isinstance(alt, dict) and set(alt) == {"Fn::Sub"} and isinstance(alt["Fn::Sub"], str):
            text = alt["Fn::Sub"]
            if "*" in text or "?" in text:
                problems.append(f"wildcard action {text!r}")
            elif "${" in text:
                problems.append(f"action {text!r} is not a literal and cannot be checked")
        else:
            problems.append(f"action {json.dumps(alt, default=str)} is not a literal and cannot be checked")
    return problems


def check_statement(stmt, where: str, report: Report) -> None:
    for alt in branches(stmt):
        if not isinstance(alt, dict):
            report.findings.append(f"{where}: statement is not an object: {alt!r}")
            continue
        report.statements += 1
        effect = alt.get("Effect")
        if effect == "Deny":
            continue
        problems = []
        if "NotAction" in alt:
            problems.append("Allow with NotAction grants every other action")
        if "Action" in alt:
            problems += action_problems(alt["Action"])
        elif "NotAction" not in alt:
            problems.append("statement has no Action")
        sid = f" (Sid {alt['Sid']})" if isinstance(alt.get("Sid"), str) else ""
        for problem in problems:
            report.findings.append(f"{where}{sid} line {line_of(alt)}: {problem}")


def check_document(doc, where: str, report: Report) -> None:
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            report.findings.append(f"{where}: policy document string is not JSON")
            return
    for alt in branches(doc):
        if not isinstance(alt, dict) or "Statement" not in alt:
            continue
        statements = alt["Statement"]
        for stmts in branches(statements):
            if isinstance(stmts, list):
                for i, stmt in enumerate(stmts):
                    check_statement(stmt, f"{where}.Statement[{i}]", report)
            else:
                check_statement(stmts, f"{where}.Statement", report)


def walk(node, where: str, report: Report) -> None:
    """Find every policy document below `node` (a resource's Properties)."""
    if isinstance(node, dict):
        if "Statement" in node:
            check_document(node, where, report)
            return
        for key, value in node.items():
            if key in DOCUMENT_KEYS and isinstance(value, str):
                check_document(value, f"{where}.{key}", report)
            else:
                walk(value, f"{where}.{key}", report)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk(value, f"{where}[{i}]", report)


def check_opaque_permissions(name: str, rtype: str, props: dict, report: Report) -> None:
    """Permissions granted by reference cannot be inspected: refuse them."""
    for key in ("ManagedPolicyArns",):
        if props.get(key):
            report.findings.append(
                f"{name} ({rtype}) line {line_of(props)}: {key} cannot be checked for wildcard "
                "actions; use inline statements"
            )
    if rtype in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
        for alt in branches(props.get("Policies")):
            if alt is None:
                continue
            entries = alt if isinstance(alt, list) else [alt]
            for i, entry in enumerate(entries):
                for e in branches(entry):
                    if isinstance(e, dict) and "Statement" in e:
                        continue
                    report.findings.append(
                        f"{name} ({rtype}) Policies[{i}] line {line_of(e)}: managed policy or SAM "
                        f"policy template {json.dumps(e, default=str)} cannot be checked; use inline statements"
                    )


def check_template(template, label: str, report: Report) -> None:
    resources = template.get("Resources") if isinstance(template, dict) else None
    if not isinstance(resources, dict):
        return
    for name, resource in resources.items():
        if not isinstance(resource, dict):
            continue
        rtype = resource.get("Type", "?")
        props = resource.get("Properties")
        if not isinstance(props, dict):
            continue
        check_opaque_permissions(f"{label}: {name}", rtype, props, report)
        walk(props, f"{label}: {name} ({rtype}) Properties", report)


def default_templates() -> list[Path]:
    infra = ROOT / "infra"
    return sorted(p for ext in ("yaml", "yml", "json") for p in infra.glob(f"*.{ext}"))


def run(paths: list[Path]) -> int:
    if not paths:
        print("check_iam_no_wildcards: no templates found under infra/", file=sys.stderr)
        return 2
    report = Report()
    for path in paths:
        template, errors = decode(str(path))
        if errors or template is None:
            for err in errors:
                print(f"{path}: cannot decode: {err}", file=sys.stderr)
            return 2
        try:
            label = str(path.resolve().relative_to(ROOT))
        except ValueError:
            label = str(path)
        check_template(template, label, report)
    if report.findings:
        for finding in report.findings:
            print(f"FAIL {finding}")
        print(
            f"checked {report.statements} policy statements in {len(paths)} templates: "
            f"{len(report.findings)} finding(s)"
        )
        return 1
    print(f"checked {report.statements} policy statements in {len(paths)} templates: no wildcard actions")
    return 0


SELF_TEST_HEADER = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Conditions:
  C: !Equals [a, b]
Resources:
"""

# (name, resources YAML, expected number of findings, text every finding must mention)
SELF_TESTS = [
    ("iot:* in an IAM role", """
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}]
      Policies:
        - PolicyName: p
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: [iot:AddThingToThingGroup, iot:*]
                Resource: !Sub arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:thing/*
""", 1, "'iot:*'"),
    ("iot:Update* behind Fn::If in a SAM function", """
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: .
      Policies:
        - Statement:
            - !If
              - C
              - {Effect: Allow, Action: iot:UpdateThingShadow, Resource: "*"}
              - {Effect: Allow, Action: "iot:Update*", Resource: "*"}
""", 1, "'iot:Update*'"),
    ("bare '*' in a JSON-string queue policy", """
  Q:
    Type: AWS::SQS::Queue
  P:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Q]
      PolicyDocument: '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}'
""", 1, "wildcard action '*'"),
    ("NotAction, non-literal action and a managed policy", """
  P:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - {Effect: Allow, NotAction: iam:PassRole, Resource: "*"}
          - {Effect: Allow, Action: !Ref AWS::StackName, Resource: "*"}
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}]
      ManagedPolicyArns: [arn:aws:iam::aws:policy/AdministratorAccess]
""", 3, ""),
    ("clean: narrow actions, a deny-all IoT policy, a TLS-only bucket policy", """
  Pol:
    Type: AWS::IoT::Policy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement: [{Effect: Deny, Action: "iot:*", Resource: "*"}]
  B:
    Type: AWS::S3::Bucket
  BP:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref B
      PolicyDocument:
        Statement:
          - {Effect: Deny, Principal: "*", Action: "s3:*", Resource: "*", Condition: {Bool: {aws:SecureTransport: "false"}}}
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}]
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: [iot:AddThingToThingGroup, iot:RemoveThingFromThingGroup], Resource: "*"}
              - !If [C, {Effect: Allow, Action: iot:ListActiveViolations, Resource: "*"}, !Ref AWS::NoValue]
""", 0, ""),
]


def self_test() -> int:
    failed = 0
    for name, resources, expected, mention in SELF_TESTS:
        template, errors = decode_str(SELF_TEST_HEADER + resources)
        if errors or template is None:
            print(f"self-test {name!r}: cannot decode: {errors}")
            failed += 1
            continue
        report = Report()
        check_template(template, "self-test", report)
        ok = (
            len(report.findings) == expected
            and report.statements > 0
            and all(mention in finding for finding in report.findings)
        )
        print(
            f"self-test {'ok  ' if ok else 'FAIL'} {name}: {len(report.findings)} finding(s), "
            f"expected {expected}"
        )
        if not ok:
            failed += 1
            for finding in report.findings:
                print(f"    {finding}")
    if failed:
        print(f"self-test: {failed} of {len(SELF_TESTS)} cases failed")
        return 1
    print(f"self-test: all {len(SELF_TESTS)} cases passed (the check catches wildcard actions)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("templates", nargs="*", type=Path, help="templates (default: infra/*.yaml|yml|json)")
    parser.add_argument("--self-test", action="store_true", help="prove on built-in templates that the check can fail")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    return run(args.templates or default_templates())


if __name__ == "__main__":
    sys.exit(main())
