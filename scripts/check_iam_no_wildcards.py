#!/usr/bin/env python3
"""Fail when a policy statement in an infrastructure template grants more than it names.

Usage:
    .venv/bin/python scripts/check_iam_no_wildcards.py [TEMPLATE ...]   # default: infra/*.yaml|yml|json
    .venv/bin/python scripts/check_iam_no_wildcards.py --self-test
    .venv/bin/python scripts/check_iam_no_wildcards.py --verbose ...     # list every checked document

Templates are read with cfn-lint's own decoder, so !Ref, !Sub, !If and friends are understood.
Every policy document under a resource's Properties is checked: IAM roles, policies and managed
policies, AWS::Serverless::Function `Policies`, SQS/SNS/S3 resource policies, KMS key policies,
IoT policies (anything holding a `Statement`). Both branches of an Fn::If are checked.

A statement fails when it is not an explicit Deny and
  * an Action contains '*' or '?' anywhere ("*", "iot:*", "iot:Update*"), or
  * it uses NotAction (an Allow with NotAction grants everything else), or
  * an Action is not a literal (a !Ref to a parameter could hold anything), or
  * an Action is unknown to the Service Authorization Reference (cfn-lint's copy of it), or
  * it uses NotResource (an Allow with NotResource grants every other resource), or
  * its Resource is "*" while an action supports resource-level permissions (the action has
    resource types in the Service Authorization Reference: name them), or
  * (resource policies) it allows the principal "*" (or {"AWS": "*"}) without a Condition, or
    uses NotPrincipal, or
  * (trust policies) it lets a service that assumes roles on a customer's behalf
    (iot.amazonaws.com) assume the role without both aws:SourceArn and aws:SourceAccount in
    its Condition (the confused deputy: another account's rule or security profile naming
    this role).
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

from cfnlint.data import AdditionalSpecs
from cfnlint.decode import decode, decode_str
from cfnlint.helpers import load_resource

ROOT = Path(__file__).resolve().parent.parent
# Keys whose value may be a policy document written as a JSON string.
DOCUMENT_KEYS = {"PolicyDocument", "AssumeRolePolicyDocument", "KeyPolicy", "PolicyText"}
NO_VALUE = {"Ref": "AWS::NoValue"}


@dataclass
class Report:
    statements: int = 0
    findings: list[str] = field(default_factory=list)
    # where -> number of statements checked in that document (for --verbose)
    documents: dict[str, int] = field(default_factory=dict)


_SERVICE_MAP: dict | None = None


def service_map() -> dict:
    """The Service Authorization Reference as shipped with cfn-lint: service -> Actions -> Resources."""
    global _SERVICE_MAP
    if _SERVICE_MAP is None:
        _SERVICE_MAP = load_resource(AdditionalSpecs, "Policies.json")
    return _SERVICE_MAP


def action_resource_types(action: str) -> list[str] | None:
    """Resource types of a literal action ("iot:AttachPolicy" -> ["cert", "thinggroup"]);
    [] when it has none (only "*" is possible), None when the action is unknown."""
    service, _, name = action.partition(":")
    entry = service_map().get(service.lower(), {}).get("Actions", {}).get(name.lower())
    if entry is None:
        return None
    return list(entry.get("Resources", []))


def line_of(node) -> str:
    mark = getattr(node, "start_mark", None)
    return f"{mark.line + 1}" if mark is not None else "?"


def branches(value, keep_no_value: bool = False):
    """Literal alternatives of a value: Fn::If is expanded, AWS::NoValue dropped (or yielded
    as None with keep_no_value)."""
    if isinstance(value, dict) and len(value) == 1 and "Fn::If" in value:
        args = value["Fn::If"]
        if isinstance(args, list) and len(args) == 3:
            for branch in args[1:]:
                yield from branches(branch, keep_no_value)
            return
    if value == NO_VALUE or value is None:
        if keep_no_value:
            yield None
        return
    yield value


def literal_actions(action) -> list[str]:
    """Every literal action string of an Action value (all Fn::If branches)."""
    found = []
    for alt in branches(action):
        if isinstance(alt, list):
            for item in alt:
                found += literal_actions(item)
        elif isinstance(alt, str):
            found.append(alt)
    return found


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
            elif action_resource_types(alt) is None:
                problems.append(f"unknown action {alt!r} (not in the Service Authorization Reference)")
        elif isinstance(alt, dict) and set(alt) == {"Fn::Sub"} and isinstance(alt["Fn::Sub"], str):
            text = alt["Fn::Sub"]
            if "*" in text or "?" in text:
                problems.append(f"wildcard action {text!r}")
            elif "${" in text:
                problems.append(f"action {text!r} is not a literal and cannot be checked")
        else:
            problems.append(f"action {json.dumps(alt, default=str)} is not a literal and cannot be checked")
    return problems


def resource_values(resource) -> list:
    """Every alternative entry of a Resource value (all Fn::If branches, lists flattened)."""
    found = []
    for alt in branches(resource):
        if isinstance(alt, list):
            for item in alt:
                found += resource_values(item)
        else:
            found.append(alt)
    return found


def resource_problems(action, resource) -> list[str]:
    """Resource "*" is acceptable only for actions without resource types."""
    if "*" not in resource_values(resource):
        return []
    scoped = []
    for name in literal_actions(action):
        types = action_resource_types(name)
        if types:
            scoped.append(f"{name} ({', '.join(types)})")
    if not scoped:
        return []
    return [f"Resource '*' for actions that support resource-level permissions: {'; '.join(scoped)}"]


def is_star_principal(principal) -> bool:
    for alt in branches(principal):
        if alt == "*":
            return True
        if isinstance(alt, dict):
            for value in alt.values():
                values = value if isinstance(value, list) else [value]
                if any(v == "*" for v in values):
                    return True
    return False


# Services that assume a customer's role for a resource the customer names (a rule, a security
# profile): the trust must name which resources, or any account's resource may use the role.
PINNED_SERVICES = {"iot.amazonaws.com"}
PINNING_KEYS = ("aws:SourceArn", "aws:SourceAccount")


def service_principals(principal) -> set[str]:
    found = set()
    for alt in branches(principal):
        if isinstance(alt, dict):
            for service in branches(alt.get("Service")):
                for s in service if isinstance(service, list) else [service]:
                    if isinstance(s, str):
                        found.add(s.lower())
    return found


def condition_keys(condition) -> set[str]:
    """The condition keys one Condition branch tests, under any operator."""
    keys = set()
    if isinstance(condition, dict):
        for tests in condition.values():
            if isinstance(tests, dict):
                keys |= {k.lower() for k in tests if isinstance(k, str)}
    return keys


def trust_problems(stmt: dict) -> list[str]:
    pinned = service_principals(stmt.get("Principal")) & PINNED_SERVICES
    if not pinned:
        return []
    problems = []
    for condition in branches(stmt.get("Condition"), keep_no_value=True):
        missing = [k for k in PINNING_KEYS if k.lower() not in condition_keys(condition)]
        if missing:
            problems.append(
                f"{', '.join(sorted(pinned))} may assume this role without "
                f"{' and '.join(missing)} in its Condition (confused deputy)"
            )
    return problems


def principal_problems(stmt: dict) -> list[str]:
    """Resource policies: an Allow for everybody needs a Condition that narrows it; a service
    acting for a customer's resource must be pinned to this account's resources."""
    problems = trust_problems(stmt)
    if "NotPrincipal" in stmt:
        problems.append("Allow with NotPrincipal grants every other principal")
    if "Principal" in stmt and is_star_principal(stmt["Principal"]):
        # Every Fn::If branch must carry a non-empty condition; AWS::NoValue counts as none.
        if not all(isinstance(c, dict) and c for c in branches(stmt.get("Condition"), keep_no_value=True)):
            problems.append("Allow to principal '*' without a Condition (anyone may do this)")
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
        if "NotResource" in alt:
            problems.append("Allow with NotResource grants every other resource")
        if "Resource" in alt and "Action" in alt:
            problems += resource_problems(alt["Action"], alt["Resource"])
        problems += principal_problems(alt)
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
        before = report.statements
        for stmts in branches(statements):
            if isinstance(stmts, list):
                for i, stmt in enumerate(stmts):
                    check_statement(stmt, f"{where}.Statement[{i}]", report)
            else:
                check_statement(stmts, f"{where}.Statement", report)
        report.documents[where] = report.documents.get(where, 0) + report.statements - before


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


# Resource types that carry permissions: each must yield at least one checked statement, so a
# role or resource policy written in a shape this script does not understand fails loudly
# instead of being skipped.
PERMISSION_TYPES = {
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::RolePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::TopicInlinePolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SQS::QueueInlinePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::IoT::Policy",
    "AWS::KMS::Key",
}


def check_lambda_permission(name: str, props: dict, report: Report) -> None:
    """AWS::Lambda::Permission is a resource policy statement in disguise."""
    report.statements += 1
    report.documents[f"{name} (AWS::Lambda::Permission)"] = 1
    principal = props.get("Principal")
    narrowed = any(props.get(k) for k in ("SourceArn", "SourceAccount", "PrincipalOrgID"))
    if is_star_principal(principal) and not narrowed:
        report.findings.append(
            f"{name} (AWS::Lambda::Permission) line {line_of(props)}: Principal '*' without "
            "SourceArn, SourceAccount or PrincipalOrgID (anyone may invoke)"
        )
    for alt in branches(props.get("Action")):
        if isinstance(alt, str) and ("*" in alt or "?" in alt):
            report.findings.append(f"{name} (AWS::Lambda::Permission): wildcard action {alt!r}")


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
            if rtype in PERMISSION_TYPES:
                report.findings.append(f"{label}: {name} ({rtype}): no Properties to check")
            continue
        if rtype == "AWS::Lambda::Permission":
            check_lambda_permission(f"{label}: {name}", props, report)
            continue
        check_opaque_permissions(f"{label}: {name}", rtype, props, report)
        before = report.statements
        walk(props, f"{label}: {name} ({rtype}) Properties", report)
        if rtype in PERMISSION_TYPES and report.statements == before:
            report.findings.append(
                f"{label}: {name} ({rtype}) line {line_of(props)}: no policy statement found to check"
            )


def default_templates() -> list[Path]:
    infra = ROOT / "infra"
    return sorted(p for ext in ("yaml", "yml", "json") for p in infra.glob(f"*.{ext}"))


def run(paths: list[Path], verbose: bool = False) -> int:
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
    if verbose:
        for where, count in report.documents.items():
            print(f"checked {count:3d} statement(s): {where}")
    summary = (
        f"checked {report.statements} policy statements in {len(report.documents)} policy documents "
        f"of {len(paths)} templates"
    )
    if report.findings:
        for finding in report.findings:
            print(f"FAIL {finding}")
        print(f"{summary}: {len(report.findings)} finding(s)")
        return 1
    print(f"{summary}: no findings")
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
              - {Effect: Allow, Action: iot:UpdateThingShadow, Resource: !Sub "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:thing/*"}
              - {Effect: Allow, Action: "iot:Update*", Resource: !Sub "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:thing/*"}
""", 1, "'iot:Update*'"),
    ("bare '*' in a JSON-string queue policy", """
  Q:
    Type: AWS::SQS::Queue
  P:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Q]
      PolicyDocument: '{"Statement": [{"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "*", "Resource": "*"}]}'
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
    ("Resource '*' for actions with resource types (one behind Fn::If)", """
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}]
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: [iot:DescribeEndpoint, iot:UpdateCertificate], Resource: "*"}
              - {Effect: Allow, Action: iot:DeleteConnection, Resource: [!If [C, "*", !Ref AWS::NoValue]]}
""", 2, "Resource '*' for actions that support resource-level permissions"),
    ("an unknown (misspelt) action", """
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}]
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: iot:ListPrincipalThingV2, Resource: !Sub "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:cert/*"}
""", 1, "unknown action 'iot:ListPrincipalThingV2'"),
    ("Allow with NotResource in an IAM policy", """
  P:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - {Effect: Allow, Action: sns:Publish, NotResource: !Sub "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:secret"}
""", 1, "NotResource"),
    ("topic policy allowing principal '*' without a Condition", """
  T:
    Type: AWS::SNS::Topic
  TP:
    Type: AWS::SNS::TopicPolicy
    Properties:
      Topics: [!Ref T]
      PolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {AWS: "*"}, Action: sns:Publish, Resource: !Ref T}
""", 1, "principal '*' without a Condition"),
    ("queue policy allowing '*' behind Fn::If, with an empty Condition, and NotPrincipal", """
  Q:
    Type: AWS::SQS::Queue
  QP:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Q]
      PolicyDocument:
        Statement:
          - {Effect: Allow, Principal: !If [C, {Service: sns.amazonaws.com}, "*"], Action: sqs:SendMessage, Resource: !GetAtt Q.Arn}
          - {Effect: Allow, Principal: "*", Action: sqs:SendMessage, Resource: !GetAtt Q.Arn, Condition: {}}
          - {Effect: Allow, NotPrincipal: {AWS: !Ref AWS::AccountId}, Action: sqs:SendMessage, Resource: !GetAtt Q.Arn}
          - Effect: Allow
            Principal: "*"
            Action: sqs:SendMessage
            Resource: !GetAtt Q.Arn
            Condition: !If [C, {ArnEquals: {aws:SourceArn: !Ref AWS::StackId}}, !Ref AWS::NoValue]
""", 4, "rincipal"),
    ("Lambda permission for principal '*' without a source", """
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: .
  LP:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !GetAtt F.Arn
      Action: lambda:InvokeFunction
      Principal: "*"
""", 1, "anyone may invoke"),
    ("a role whose permissions this check cannot see", """
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: !Ref AWS::NoValue
""", 1, "no policy statement found"),
    ("iot.amazonaws.com trusted by account only, or by nothing behind Fn::If", """
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {Service: iot.amazonaws.com}
            Action: sts:AssumeRole
            Condition: {StringEquals: {aws:SourceAccount: !Ref AWS::AccountId}}
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: iot:Publish, Resource: !Sub "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:topic/t"}
  S:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {Service: [lambda.amazonaws.com, iot.amazonaws.com]}
            Action: sts:AssumeRole
            Condition: !If [C, {ArnLike: {aws:SourceArn: x}, StringEquals: {aws:SourceAccount: y}}, !Ref AWS::NoValue]
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: iot:Publish, Resource: !Sub "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:topic/t"}
""", 2, "confused deputy"),
    ("clean: scoped actions, Deny-only IoT policy, TLS-only bucket, trusted publishers, sourced permission", """
  Pol:
    Type: AWS::IoT::Policy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Deny, Action: [iot:Publish, iot:Receive], NotResource: "arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"}
          - {Effect: Deny, NotAction: [iot:Connect, iot:Publish, iot:Subscribe, iot:Receive], Resource: "*"}
  B:
    Type: AWS::S3::Bucket
  BP:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref B
      PolicyDocument:
        Statement:
          - {Effect: Deny, Principal: "*", Action: "s3:*", Resource: "*", Condition: {Bool: {aws:SecureTransport: "false"}}}
  T:
    Type: AWS::SNS::Topic
  TP:
    Type: AWS::SNS::TopicPolicy
    Properties:
      Topics: [!Ref T]
      PolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {AWS: "*"}, Action: sns:Publish, Resource: !Ref T, Condition: {ArnEquals: {aws:PrincipalArn: !GetAtt R.Arn}}}
          - {Effect: Deny, Principal: "*", Action: sns:Publish, Resource: !Ref T, Condition: {ArnNotEquals: {aws:PrincipalArn: !GetAtt R.Arn}}}
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: .
  LP:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !GetAtt F.Arn
      Action: lambda:InvokeFunction
      Principal: sns.amazonaws.com
      SourceArn: !Ref T
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}]
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [iot:AddThingToThingGroup, iot:RemoveThingFromThingGroup]
                Resource: !Sub arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:thing/*
              - !If [C, {Effect: Allow, Action: iot:ListAuditFindings, Resource: "*"}, !Ref AWS::NoValue]
              - {Effect: Allow, Action: [xray:PutTraceSegments, iot:DescribeEndpoint], Resource: "*"}
  IR:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {Service: iot.amazonaws.com}
            Action: sts:AssumeRole
            Condition:
              StringEquals: {aws:SourceAccount: !Ref AWS::AccountId}
              ArnLike: {aws:SourceArn: !Sub "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:rule/r"}
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: iot:Publish, Resource: !Sub "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:topic/t"}
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
            # a clean case proves nothing unless statements were actually checked
            and (report.statements > 0 or expected > 0)
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
    print(f"self-test: all {len(SELF_TESTS)} cases passed (the check catches what it claims to)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("templates", nargs="*", type=Path, help="templates (default: infra/*.yaml|yml|json)")
    parser.add_argument("--self-test", action="store_true", help="prove on built-in templates that the check can fail")
    parser.add_argument("--verbose", action="store_true", help="list every policy document checked")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    return run(args.templates or default_templates(), verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
