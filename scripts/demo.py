#!/usr/bin/env python3
"""The local demo: start moto, register the sample things and the Quarantine group, replay
events/ through both functions' handler code (`replay --function both`), print every thing's
thing groups and desired shadow state, and stop moto.

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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replay", default=os.path.join(ROOT, "target", "debug", "replay"))
    args = parser.parse_args()

    events = sorted(glob.glob(os.path.join(ROOT, "events", "*.json")))
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_REGION=REGION, AWS_EC2_METADATA_DISABLED="true")
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
            print(f"== registered {len(things)} things and the static thing group {GROUP}")

            skipped = ", ".join(os.path.basename(e) for e in events if e in needs_lookup)
            print(f"== not replayed against moto (they need Audit or certificate lookups): {skipped}")
            print(f"== replay --endpoint-url {endpoint} ({len(live_events)} files; both functions: thing group + shadow)")
            run = subprocess.run([args.replay, "--endpoint-url", endpoint, "--function", "both", *live_events],
                                 env=env, capture_output=True, text=True)
            for line in run.stdout.splitlines():
                d = json.loads(line)
                actions = ", ".join(f"{a['action']}={a['outcome']}" for a in d.get("actions", [])) or "-"
                named = ",".join(d.get("things") or []) or str(d.get("thingName"))
                print(f"  {d['decision']:<10} {named:<18} {d['outcome']:<9} {actions[:60]:<40} {d['reason'][:70]}")
            if run.returncode != 0:
                print(run.stderr, file=sys.stderr)
                raise SystemExit(f"demo: replay exited {run.returncode}")

            print("== result in the emulator (thing groups | desired shadow state)")
            for thing in things:
                groups = [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"]]
                try:
                    shadow = json.loads(data.get_thing_shadow(thingName=thing)["payload"].read())
                    desired = json.dumps(shadow.get("state", {}).get("desired"))
                except data.exceptions.ResourceNotFoundException:
                    desired = "(no shadow)"
                print(f"  {thing:<18} groups={groups!s:<16} desired={desired}")
            quarantined = iot.list_things_in_thing_group(thingGroupName=GROUP)["things"]
            print(f"== {len(quarantined)} things quarantined: {', '.join(sorted(quarantined))}")
        finally:
            moto.terminate()
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                moto.kill()
            print("== moto stopped")


if __name__ == "__main__":
    main()
