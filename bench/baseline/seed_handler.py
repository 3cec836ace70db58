"""The seed article's mitigation Lambda (seed 001), written out for the benchmark baseline.

Faithful to the article: two boto3 clients created at import, then for every record
json.loads the SNS Message, UpdateThingGroupsForThing (add to the quarantine group) and
UpdateThingShadow (desired.quarantine = true), one after the other. The only additions the
benchmark needs: it handles every record (the article reads Records[0] only), accepts the
SQS-of-SNS shape, and answers SQS with a partial batch response.

Environment: AWS_ENDPOINT_URL (the local stand-in), QUARANTINE_GROUP (default Quarantine).
"""

import json
import os

import boto3

IOT_QUARANTINE_GROUP = os.environ.get("QUARANTINE_GROUP", "Quarantine")
ENDPOINT_URL = os.environ.get("AWS_ENDPOINT_URL") or None

iot_cli = boto3.client("iot", endpoint_url=ENDPOINT_URL)
iot_data_cli = boto3.client("iot-data", endpoint_url=ENDPOINT_URL)


def get_thing_name(msg):
    return msg["thingName"]


def get_message(record):
    """The violation JSON string of an SNS record or an SQS record (SNS envelope or raw)."""
    if "Sns" in record:
        return record["Sns"]["Message"]
    body = record["body"]
    envelope = json.loads(body)
    if isinstance(envelope, dict) and "Message" in envelope:
        return envelope["Message"]
    return body


def mitigate(record):
    msg = json.loads(get_message(record))
    thing_name = get_thing_name(msg)
    iot_cli.update_thing_groups_for_thing(
        thingName=thing_name,
        thingGroupsToAdd=[IOT_QUARANTINE_GROUP],
    )
    payload = json.dumps({"state": {"desired": {"quarantine": True}}})
    iot_data_cli.update_thing_shadow(thingName=thing_name, payload=payload)


def lambda_handler(event, context):
    records = event["Records"]
    is_sqs = bool(records) and records[0].get("eventSource") == "aws:sqs"
    failures = []
    for record in records:
        if is_sqs:
            try:
                mitigate(record)
            except Exception as e:  # a failed record is handed back to SQS
                print(f"record {record.get('messageId')} failed: {e!r}")
                failures.append({"itemIdentifier": record["messageId"]})
        else:
            mitigate(record)
    if is_sqs:
        return {"batchItemFailures": failures}
    return "OK"
