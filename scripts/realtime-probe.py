#!/usr/bin/env python3
"""One WebSocket session, as a voice product opens it: prints what happened as JSON.

    python3 scripts/realtime-probe.py URL '{"headers": {...}, "subprotocols": [...], "send": [...], "until": "response.done"}'

Sends each message of `send` (JSON values, sent as text), reads until a message whose `type` is `until` (or whose
`isFinal` is true, or the close), then closes. Prints {"status", "subprotocol", "received": [...], "close_code"}.
"""
import json
import sys

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

url, plan = sys.argv[1], json.loads(sys.argv[2])
result = {"received": []}
try:
    with connect(url, additional_headers=plan.get("headers", {}), subprotocols=plan.get("subprotocols") or None,
                 open_timeout=10, close_timeout=5) as socket:
        result["subprotocol"] = socket.subprotocol
        for message in plan.get("send", []):
            socket.send(json.dumps(message))
        try:
            while True:
                text = socket.recv(timeout=10)
                event = json.loads(text)
                result["received"].append(event)
                if (plan.get("until") and event.get("type") == plan["until"]) or event.get("isFinal") is True:
                    break
        except ConnectionClosed as closed:
            result["close_code"] = closed.rcvd.code if closed.rcvd else None
except InvalidStatus as refused:
    result["status"] = refused.response.status_code
print(json.dumps(result))
