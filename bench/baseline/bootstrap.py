"""A minimal AWS Lambda Runtime API client (API version 2018-06-01) in the standard library,
for running bench/baseline/seed_handler.py as a custom runtime against a local Runtime API.

The handler module is imported before the first poll, so the measured cold start includes
importing boto3 and creating the clients, as in a Lambda Python runtime.
"""

import http.client
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
PREFIX = "/2018-06-01/runtime"


class Connection:
    """One keep-alive connection to the Runtime API, reopened after any error."""

    def __init__(self):
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(API)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                return response, response.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise


def error_body(exc):
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_exception(exc),
        }
    ).encode()


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self.deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")


def main():
    api = Connection()
    try:
        import seed_handler

        handler = seed_handler.lambda_handler
    except Exception as exc:
        api.request(
            "POST",
            PREFIX + "/init/error",
            error_body(exc),
            {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
        )
        raise
    while True:
        response, body = api.request("GET", PREFIX + "/invocation/next")
        if response.status != 200:
            continue
        context = Context(response.headers)
        request_id = context.aws_request_id
        try:
            result = handler(json.loads(body), context)
            api.request(
                "POST",
                f"{PREFIX}/invocation/{request_id}/response",
                json.dumps(result).encode(),
                {"Content-Type": "application/json"},
            )
        except Exception as exc:
            api.request(
                "POST",
                f"{PREFIX}/invocation/{request_id}/error",
                error_body(exc),
                {"Lambda-Runtime-Function-Error-Type": "Unhandled"},
            )


if __name__ == "__main__":
    main()
