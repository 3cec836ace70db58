#!/usr/bin/env python3
"""The local demo: start moto, register the sample things, the Quarantine group and the
quarantine ledger's table, replay events/ through both functions' handler code as each
function acts from the ledger (`replay --function both --ledger-table`), then show what an
operator sees and does with quarantinectl: the causes, a burst held by the blast-radius budget
and approved, a thing taken out of the group behind the tools' back and put back, a release by
hand and the thing's history. Last, every thing's thing groups and
desired shadow state, and moto is stopped.

Run it with `make demo` (which prepares the virtualenv and builds replay) or directly:
    DISCONNECT=false .venv/bin/python scripts/demo.py --replay ${CARGO_TARGET_DIR:-target}/debug/replay
"""
import argparse
import glob
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "us-east-1"
GROUP = "Quarantine"
TABLE = "quarantine-ledger"
# The burst: alarms for this many new things, with room in the budget for BURST_ALLOWED.
BURST = 8
BURST_ALLOWED = 5
# The budget's window for the whole demo: a week, so the samples and the burst share one
# (with the default hour, a demo run across the hour would count the burst afresh).
BUDGET_WINDOW_MINUTES = 10080


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(port, log):
    server = os.path.join(ROOT, ".venv", "bin", "moto_server")
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: moto exited early (status {proc.returncode}); see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"demo: moto did not start within 30 s; see {log.name}")


def create_ledger_table(endpoint):
    """The ledger's table as infra/template.yaml declares it (keys thing and sk)."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    dynamodb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "thing", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "thing", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}])


def budget_used(endpoint):
    """How many things the budget counted in the current window (BUDGET_WINDOW_MINUTES,
    aligned on the clock), and the window's start: the ledger's `budget#<start>` counter."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    window = BUDGET_WINDOW_MINUTES * 60
    start = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(time.time()) // window * window))
    item = dynamodb.get_item(TableName=TABLE, ConsistentRead=True,
                             Key={"thing": {"S": f"budget#{start}"}, "sk": {"S": "count"}}).get("Item")
    return (int(item["things"]["N"]) if item else 0), start


def burst_event(path, things):
    """An SQS batch of Device Defender in-alarm violations, one per thing (raw delivery)."""
    records = []
    for i, thing in enumerate(things):
        message = {"violationEventTime": 1_700_000_000_000 + i, "thingName": thing,
                   "behavior": {"name": "MessagesPub", "metric": "aws:num-messages-sent"},
                   "violationEventType": "in-alarm", "metricValue": {"count": 500},
                   "violationId": f"burst-violation-{i:02d}", "securityProfileName": "MySecProfile"}
        records.append({"messageId": f"burst-message-{i:02d}", "receiptHandle": "demo",
                        "body": json.dumps(message), "attributes": {}, "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:quarantine-alerts",
                        "awsRegion": REGION})
    with open(path, "w") as f:
        json.dump({"Records": records}, f)


def replay_live(binary, env, endpoint, *args):
    """Run replay against the emulator and the ledger, print its lines, and stop the demo if
    it fails."""
    run = subprocess.run([binary, "--endpoint-url", endpoint, "--ledger-table", TABLE, *args],
                         env=env, capture_output=True, text=True)
    print_replay(run.stdout)
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        raise SystemExit(f"demo: replay {' '.join(args)} exited {run.returncode}")


def print_replay(stdout):
    for line in stdout.splitlines():
        d = json.loads(line)
        actions = ", ".join(f"{a['action']}={a['outcome']}" for a in d.get("actions", [])) or "-"
        things = d.get("things") or []
        named = (f"{things[0]}..{things[-1]} ({len(things)})" if len(things) > 3
                 else ",".join(things) or str(d.get("thingName")))
        print(f"  {d['decision']:<10} {d.get('function', '-'):<6} {named:<18} {d['outcome']:<9} "
              f"{actions[:44]:<44} {d['reason'][:60]}")


def quarantinectl(binary, env, endpoint, *args, show=None):
    """Run quarantinectl against the emulator and the ledger, print its output (the first
    `show` lines), and return it."""
    command = [binary, *args, "--endpoint-url", endpoint, "--ledger-table", TABLE]
    print(f"== quarantinectl {' '.join(args)}")
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = run.stdout.splitlines()
    for line in lines[:show]:
        print(f"  {line}")
    if show is not None and len(lines) > show:
        print(f"  ... ({len(lines) - show} more lines)")
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        raise SystemExit(f"demo: quarantinectl {args[0]} exited {run.returncode}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replay", default=os.path.join(ROOT, "target", "debug", "replay"))
    parser.add_argument("--quarantinectl", default=None,
                        help="the quarantinectl binary (default: beside replay)")
    args = parser.parse_args()
    ctl = args.quarantinectl or os.path.join(os.path.dirname(args.replay), "quarantinectl")

    events = sorted(glob.glob(os.path.join(ROOT, "events", "*.json")))
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
               BUDGET_WINDOW_MINUTES=str(BUDGET_WINDOW_MINUTES))
    # Every thing the samples name that the registry would accept (what a real fleet has).
    plan = subprocess.run([args.replay, "--dry-run", *events], env=env, capture_output=True, text=True)
    if plan.returncode != 0:
        raise SystemExit(f"demo: dry run failed:\n{plan.stderr}")
    decisions = [json.loads(line) for line in plan.stdout.splitlines()]
    # moto has no Device Defender Audit and none of the samples' certificates: the files whose
    # records need those lookups are decided above but not replayed against it (the stand-in
    # tests cover them).
    needs_lookup = {d["file"] for d in decisions
                    if d["decision"] in ("expand-audit", "lookup-finding")
                    or any(not s.startswith("thing/") for s in d.get("subjects") or [])}
    live_events = [e for e in events if e not in needs_lookup]
    things = sorted({t for d in decisions if d["file"] in live_events for t in d.get("things", [])})
    print(f"== dry run: {len(decisions)} records in {len(events)} files")
    for d in decisions:
        print(f"  {d['decision']:<14} {d.get('source') or '-':<18} {os.path.basename(d['file'])}")

    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(os.path.join(ROOT, "target", "demo-moto.log"), "w") as log:
        moto = start_moto(port, log)
        try:
            print(f"== moto emulator on {endpoint}")
            iot = boto3.client("iot", endpoint_url=endpoint, region_name=REGION,
                               aws_access_key_id="testing", aws_secret_access_key="testing")
            data = boto3.client("iot-data", endpoint_url=endpoint, region_name=REGION,
                                aws_access_key_id="testing", aws_secret_access_key="testing")
            iot.create_thing_group(thingGroupName=GROUP)
            for thing in things:
                iot.create_thing(thingName=thing)
            create_ledger_table(endpoint)
            print(f"== registered {len(things)} things, the static thing group {GROUP} and the ledger table {TABLE}")

            skipped = ", ".join(os.path.basename(e) for e in events if e in needs_lookup)
            print(f"== not replayed against moto (they need Audit or certificate lookups): {skipped}")
            print(f"== replay --endpoint-url {endpoint} --ledger-table {TABLE} ({len(live_events)} files;"
                  " each function from its own place in the ledger)")
            replay_live(args.replay, env, endpoint, "--function", "both", *live_events)

            # What the operator sees: every quarantined thing with its causes, from the ledger.
            quarantinectl(ctl, env, endpoint, "list", show=12)

            # A burst: more new things at once than the budget lets through. The budget counts
            # every thing quarantined in its window, the samples' included.
            already, window = budget_used(endpoint)
            burst = [f"burst-{i:02d}" for i in range(1, BURST + 1)]
            for thing in burst:
                iot.create_thing(thingName=thing)
            burst_file = os.path.join(ROOT, "target", "demo-burst.json")
            burst_event(burst_file, burst)
            budget = already + BURST_ALLOWED
            print(f"== a burst: {BURST} alarms for {BURST} new things, MAX_NEW_QUARANTINES={budget}"
                  f" ({already} things went into quarantine in the budget window {window} already)")
            replay_live(args.replay, env, endpoint, "--function", "group",
                        "--max-new-quarantines", str(budget),
                        # moto's DynamoDB transactions are not atomic under concurrent
                        # requests (DynamoDB's are): one record at a time.
                        "--max-concurrency", "1", burst_file)
            in_group = set(iot.list_things_in_thing_group(thingGroupName=GROUP)["things"])
            done = sum(t in in_group for t in burst)
            print(f"== {done} of the burst quarantined, {BURST - done} held")
            if done != BURST_ALLOWED:
                raise SystemExit(f"demo: the budget let {done} of the burst through, not {BURST_ALLOWED}")
            # Held: the burst's overflow, and the sample finding that names 101 things
            # (MAX_THINGS_PER_RECORD), whose things this demo does not register.
            quarantinectl(ctl, env, endpoint, "held", show=8)
            held = [t for t in burst if t not in in_group]
            quarantinectl(ctl, env, endpoint, "approve", *held, "--reason", "demo: the burst is real")
            in_group = set(iot.list_things_in_thing_group(thingGroupName=GROUP)["things"])
            done = sum(t in in_group for t in burst)
            print(f"== after approval, {done} of the {BURST} are quarantined")
            if done != BURST:
                raise SystemExit("demo: the approval did not quarantine the held things")

            # Drift: a thing taken out of the Quarantine group outside these tools while its
            # causes are active is put back when the registry's REMOVED event reaches the group
            # function (the stack routes it there with a topic rule).
            drifted = "pump-01"
            iot.remove_thing_from_thing_group(thingGroupName=GROUP, thingName=drifted)
            print(f"== drift: {drifted} removed from {GROUP} behind the tools' back; the registry event replayed")
            removed_event = os.path.join(ROOT, "events", "direct-registry-removed-from-quarantine.json")
            replay_live(args.replay, env, endpoint, "--function", "group", removed_event)
            if drifted not in iot.list_things_in_thing_group(thingGroupName=GROUP)["things"]:
                raise SystemExit(f"demo: {drifted} was not put back in {GROUP}")

            # A release by hand: the operator's path (a release request on the topic is refused
            # unless RELEASE_SOURCES names its source). The caller comes from STS.
            released = sorted(in_group - set(burst) - {drifted})[0]
            quarantinectl(ctl, env, endpoint, "release", released, "--reason", "demo: false positive")
            history = quarantinectl(ctl, env, endpoint, "history", released)
            if released in iot.list_things_in_thing_group(thingGroupName=GROUP)["things"] \
                    or not any(" release done " in line for line in history):
                raise SystemExit(f"demo: {released} was not released, or its history does not say so")

            print("== result in the emulator (thing groups | desired shadow state)")
            for thing in things + burst:
                groups = [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"]]
                try:
                    shadow = json.loads(data.get_thing_shadow(thingName=thing)["payload"].read())
                    desired = json.dumps(shadow.get("state", {}).get("desired"))
                except data.exceptions.ResourceNotFoundException:
                    desired = "(no shadow)"
                print(f"  {thing:<18} groups={groups!s:<16} desired={desired}")
            quarantined = iot.list_things_in_thing_group(thingGroupName=GROUP)["things"]
            print(f"== {len(quarantined)} things quarantined: {', '.join(sorted(quarantined))}")
            print(f"== {released} released by the operator")
        finally:
            moto.terminate()
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                moto.kill()
            print("== moto stopped")


if __name__ == "__main__":
    main()
