#!/usr/bin/env python3
"""Drive fedcloud-testsrv's AMS with the real argo-ams-library (PyPI
`argo-ams-library`, the client APEL SSM uses) and check that every call
behaves as against the real service: authx509 token, topic lookup, publish,
and the exception class the library raises for each error status.

Run by the Rust test `ams_faithful_to_argo_ams_library`; prints one JSON line
(the message ids it published, in order) on success, exits 1 on the first
failed check.

Library conventions that matter here (argo_ams_library/ams.py):
- authx509 URL is https://{endpoint}:{authn_port}/v1/service-types/ams/hosts/{endpoint}:authx509,
  so `endpoint` must be a bare host there; publish URLs are https://{endpoint}/v1/...
  The real service has authn on :8443 and the API on :443; the test server
  serves both on one port, so after the token is fetched `endpoint` becomes
  host:port.
- TLS verification uses the requests defaults, so the test CA comes in
  through REQUESTS_CA_BUNDLE.
"""

import argparse
import base64
import json
import os
import sys

import requests
from argo_ams_library import (
    AmsBalancerException,
    AmsConnectionException,
    AmsMessage,
    AmsServiceException,
    AmsTimeoutException,
    ArgoMessagingService,
)


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print(f"ok: {msg}", file=sys.stderr)


def expect_exc(exc_type, code, fn, what):
    try:
        fn()
    except exc_type as e:
        got = getattr(e, "code", None)
        if code is not None and got != code:
            fail(f"{what}: expected code {code}, got {got} ({e})")
        print(f"ok: {what} -> {type(e).__name__} {got if got is not None else ''}", file=sys.stderr)
        return e
    except Exception as e:  # noqa: BLE001 - report the wrong class
        fail(f"{what}: expected {exc_type.__name__}, got {type(e).__name__}: {e}")
    fail(f"{what}: expected {exc_type.__name__}, no exception")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--rogue-cert", required=True)
    p.add_argument("--rogue-key", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--project", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--unknown-topic", required=True)
    p.add_argument("--max-message-bytes", type=int, required=True)
    a = p.parse_args()

    os.environ["REQUESTS_CA_BUNDLE"] = a.ca
    host = "localhost"
    api = f"{host}:{a.port}"
    faults = f"https://{api}/__test/faults"
    ids = []

    # X.509 -> token, exactly as ssmsend does when no token is configured.
    ams = ArgoMessagingService(endpoint=host, project=a.project, cert=a.cert, key=a.key, authn_port=a.port)
    check(ams.token == a.token, "authx509 with the trusted host certificate returns the token")
    ams.endpoint = api

    expect_exc(
        AmsServiceException,
        401,
        lambda: ArgoMessagingService(endpoint=host, project=a.project, cert=a.rogue_cert, key=a.rogue_key, authn_port=a.port),
        "authx509 with a certificate from an untrusted CA",
    )
    r = requests.get(f"https://{api}/v1/service-types/ams/hosts/{host}:authx509", timeout=10)
    body = r.json()
    check(r.status_code == 400 and body["error"]["message"] == "No certificate provided", "authx509 without a certificate is 400")

    check(ams.has_topic(a.topic), "has_topic on a configured topic")
    check(not ams.has_topic(a.unknown_topic), "has_topic on an unknown topic is False (404)")
    check(ams.get_topic(a.topic)["name"] == f"/projects/{a.project}/topics/{a.topic}", "get_topic full name")

    r = ams.publish(a.topic, AmsMessage(data="hello", attributes={"empaid": "6b02e264/6b02e26470f5e0"}), retry=0, timeout=10)
    check(isinstance(r, dict) and len(r.get("messageIds", [])) == 1, f"publish one message -> {r}")
    ids += r["messageIds"]

    msgs = [AmsMessage(data="two", attributes={"n": "2"}), AmsMessage(data=b"\x00\xffthree", attributes={"n": "3"})]
    r = ams.publish(a.topic, msgs, retry=3, timeout=10)
    check(len(r["messageIds"]) == 2, f"publish two messages in one call -> {r}")
    ids += r["messageIds"]

    wrong = ArgoMessagingService(endpoint=api, project=a.project, token="wrong-token")
    expect_exc(AmsServiceException, 401, lambda: wrong.publish(a.topic, AmsMessage(data="x")), "publish with a wrong token")
    other = ArgoMessagingService(endpoint=api, project="no-such-project", token=a.token)
    expect_exc(AmsServiceException, 404, lambda: other.publish(a.topic, AmsMessage(data="x")), "publish to an unknown project")
    expect_exc(AmsServiceException, 404, lambda: ams.publish(a.unknown_topic, AmsMessage(data="x")), "publish to an unknown topic")

    big = "x" * (a.max_message_bytes // 4 * 3 + 3)
    e = expect_exc(AmsServiceException, 413, lambda: ams.publish(a.topic, AmsMessage(data=big)), "publish an oversize message")
    check("Message size is too large" in e.msg, "413 carries AMS's message")

    # Balancer errors: retried by the library.
    requests.post(faults, json={"status": 503, "count": 1}, timeout=10).raise_for_status()
    expect_exc(AmsBalancerException, 503, lambda: ams.publish(a.topic, AmsMessage(data="lost")), "503 without retry")
    requests.post(faults, json={"status": 502, "count": 2}, timeout=10).raise_for_status()
    r = ams.publish(a.topic, AmsMessage(data="after retries"), retry=2, retrysleep=0, timeout=10)
    check(len(r["messageIds"]) == 1, "502 twice, then success on the third attempt (retry=2)")
    ids += r["messageIds"]

    requests.post(faults, json={"status": 504}, timeout=10).raise_for_status()
    expect_exc(AmsTimeoutException, 504, lambda: ams.publish(a.topic, AmsMessage(data="x")), "504 is a timeout")
    requests.post(faults, json={"status": 408}, timeout=10).raise_for_status()
    expect_exc(AmsTimeoutException, 408, lambda: ams.publish(a.topic, AmsMessage(data="x")), "408 is a timeout")

    requests.post(faults, json={"delay_ms": 2000}, timeout=10).raise_for_status()
    expect_exc(AmsConnectionException, None, lambda: ams.publish(a.topic, AmsMessage(data="slow"), timeout=0.5), "read timeout")

    requests.post(faults, json={"drop_connection": True}, timeout=10).raise_for_status()
    expect_exc(AmsConnectionException, None, lambda: ams.publish(a.topic, AmsMessage(data="cut"), timeout=5), "dropped connection")

    # The data round-trips as base64 of the original bytes.
    stored = requests.get(f"https://{api}/__test/messages", timeout=10).json()["messages"]
    by_id = {m["messageId"]: m for m in stored}
    check(base64.b64decode(by_id[ids[0]]["data"]) == b"hello", "stored data decodes to what was published")
    check(by_id[ids[0]]["attributes"] == {"empaid": "6b02e264/6b02e26470f5e0"}, "stored attributes")
    check(base64.b64decode(by_id[ids[2]]["data"]) == b"\x00\xffthree", "binary data survives")

    print(json.dumps({"messageIds": ids}))


if __name__ == "__main__":
    main()
