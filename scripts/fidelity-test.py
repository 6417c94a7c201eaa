#!/usr/bin/env python3
"""SDK fidelity: each official SDK call made once straight to the recording mock vendor and once through Keywarden.

    python3 scripts/fidelity-test.py CONFIG.json

CONFIG names Keywarden's base URL, a workspace service token, each mock vendor's URL and the vendor keys the workspace
holds (the same key is used for the direct call, so even the vendor's auth header must match). For every call the suite
compares what the vendor received (method, path, query, body bytes, headers less the documented differences below) and
what the SDK returned (objects, exception classes, stream events in order, binary bytes). Prints one JSON report; exits
non-zero when any comparison differs.

Documented differences (docs/gateway.md, "Through Keywarden and direct"):
  - Accept-Encoding: Keywarden asks vendors for `identity` (answers are read to meter and scrub them).
  - A stream that did not ask for usage is asked for it (`stream_options.include_usage`, spliced in; the extra
    usage-only event is kept from the caller): the body differs by exactly that member.
  - Answer headers: Keywarden adds X-Keywarden-* and Server-Timing; hop-by-hop headers are its own.
"""
import base64
import json
import signal
import sys
import time
import urllib.error
import urllib.request

signal.signal(signal.SIGTERM, signal.SIG_DFL)

import anthropic
import elevenlabs
import google.genai as genai
import mistralai
import openai
try:
    from mistralai import Mistral
except ImportError:  # mistralai 2 and later
    from mistralai.client import Mistral
from google.genai import errors as genai_errors

config = json.load(open(sys.argv[1]))
base, token, mocks, keys = config["base"].rstrip("/"), config["token"], config["mocks"], config["keys"]
report = {"versions": {"openai": openai.__version__, "anthropic": anthropic.__version__, "google-genai": genai.__version__,
                       "mistralai": getattr(sys.modules.get("mistralai.client"), "__version__", getattr(mistralai, "__version__", "?")), "elevenlabs": getattr(elevenlabs, "__version__", "?")},
          "compared": [], "differences": []}

# Headers that differ by design (or by the moment: the SDK's own retry bookkeeping is the same, its timing is not).
IGNORED_HEADERS = {"accept-encoding", "connection", "keep-alive"}


def mock(vendor, method="GET", path="/__mock/requests"):
    request = urllib.request.Request(mocks[vendor] + path, method=method)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read() or b"null")


def recorded(vendor, sessions=0):
    """What the vendor received; with `sessions`, waits (up to 10 s) until that many WebSocket sessions are recorded: the
    mock records one when it ends, and through Keywarden it ends after the client's end reached the vendor."""
    deadline = time.monotonic() + 10
    while True:
        requests = [r for r in mock(vendor) if not r["path"].startswith("/__mock")]
        if sum(r["method"] == "WS" for r in requests) >= sessions or time.monotonic() > deadline:
            return requests
        time.sleep(0.05)


# Where an SDK may put the key; Keywarden puts it where the catalog says the vendor reads it (Anthropic: x-api-key).
CREDENTIAL_HEADERS = {"authorization", "x-api-key", "x-goog-api-key", "xi-api-key", "api-key"}


def comparable(request, documented_body=None):
    headers = {k: v for k, v in request["headers"].items() if k not in IGNORED_HEADERS and k not in CREDENTIAL_HEADERS}
    # The key the vendor received, whichever header carried it.
    headers["(key)"] = sorted(v.removeprefix("Bearer ") for k, v in request["headers"].items() if k in CREDENTIAL_HEADERS)
    body = request["body"]
    if documented_body:
        undone = documented_body(body)
        if undone != body and "content-length" in headers:
            headers["content-length"] = str(len(undone.encode()))
        body = undone
    return {"method": request["method"], "path": request["path"], "query": request["query"], "headers": headers, "body": body}


def outcome(call):
    """What an SDK call returned or raised, as comparable values."""
    try:
        value = call()
        return {"returned": value}
    except Exception as error:  # the exception's class and status are what a caller branches on
        status = getattr(error, "status_code", None) or getattr(error, "code", None) or getattr(error, "status", None)
        return {"raised": type(error).__name__, "status": status if isinstance(status, int) else None}


def compare(name, vendor, direct_call, keywarden_call, documented_body=None, compare_requests=True, pause=0.0, view=None, sessions=0):
    """Runs one call both ways and records whether the vendor and the SDK saw the same."""
    mock(vendor, "DELETE")
    direct = outcome(direct_call)
    direct_requests = recorded(vendor, sessions)
    mock(vendor, "DELETE")
    if pause:
        time.sleep(pause)
    through = outcome(keywarden_call)
    through_requests = recorded(vendor, sessions)
    entry = {"call": name, "direct": direct, "keywarden": through}
    problems = []
    if direct != through:
        problems.append("the SDK saw different results")
    if compare_requests:
        view = view or comparable
        left = [view(r) for r in direct_requests]
        right = [view(r, documented_body) for r in through_requests]
        if left != right:
            problems.append("the vendor received different requests")
            entry["vendor_direct"], entry["vendor_keywarden"] = left, right
    report["compared"].append(name)
    if problems:
        entry["problems"] = problems
        report["differences"].append(entry)
    return through


def without_stream_usage(body):
    """The documented edit undone: `"stream_options":{"include_usage":true},` spliced in right after the opening brace."""
    added = '"stream_options":{"include_usage":true},'
    return body.replace("{" + added, "{", 1) if body.startswith("{" + added) else body


messages = [{"role": "user", "content": "Say hello through Keywarden, 1.0 times."}]
# Structured Outputs: a schema whose properties are not in alphabetical order (OpenAI answers in this order).
properties = {name: {"type": "string"} for name in ["zeta", "alpha", "mu", "beta", "omega", "delta", "kappa", "gamma", "iota", "epsilon",
                                                     "theta", "lambda", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon"]}
schema = {"type": "json_schema", "json_schema": {"name": "ordered", "strict": True,
          "schema": {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}}}

# --- OpenAI ---------------------------------------------------------------------------------------------------------
direct_openai = openai.OpenAI(base_url=mocks["openai"] + "/v1", api_key=keys["openai"], max_retries=0)
kw_openai = openai.OpenAI(base_url=f"{base}/openai/v1", api_key=token, max_retries=0)


def openai_chat(client, **extra):
    reply = client.chat.completions.create(model="gpt-5.4-mini", messages=messages, temperature=1.0, top_p=1e0, **extra)
    return reply.model_dump(exclude={"id", "created"})


def openai_stream(client, **extra):
    events = []
    for chunk in client.chat.completions.create(model="gpt-5.4-mini", messages=messages, stream=True, **extra):
        events.append(chunk.model_dump(exclude={"id", "created"}))
    return events


compare("openai chat", "openai", lambda: openai_chat(direct_openai), lambda: openai_chat(kw_openai))
compare("openai structured outputs, 20 properties in schema order", "openai",
        lambda: openai_chat(direct_openai, response_format=schema), lambda: openai_chat(kw_openai, response_format=schema))
compare("openai stream with usage asked", "openai", lambda: openai_stream(direct_openai, stream_options={"include_usage": True}),
        lambda: openai_stream(kw_openai, stream_options={"include_usage": True}))
# Keywarden asks for usage to meter the stream (documented): the body differs by that member alone, the caller's events not.
compare("openai stream without usage asked", "openai", lambda: openai_stream(direct_openai, response_format=schema),
        lambda: openai_stream(kw_openai, response_format=schema), documented_body=without_stream_usage)
compare("openai models list", "openai", lambda: [m.id for m in direct_openai.models.list()], lambda: [m.id for m in kw_openai.models.list()])


def openai_chat_model(client, model):
    return client.chat.completions.create(model=model, messages=messages).model_dump(exclude={"id", "created"})


compare("openai 403 for a model the account may not use", "openai", lambda: openai_chat_model(direct_openai, "gpt-forbidden-model"),
        lambda: openai_chat_model(kw_openai, "gpt-forbidden-model"))
compare("openai with an empty model", "openai", lambda: openai_chat_model(direct_openai, ""), lambda: openai_chat_model(kw_openai, ""))

# A client that gives up before the answer's head: both raise the SDK's timeout; the vendor saw the same request.
slow_direct = openai.OpenAI(base_url=mocks["openai"] + "/v1", api_key=keys["openai_slow"], max_retries=0, timeout=0.8)
# (The slow key is the slow workspace's own: the same key both ways.)
slow_kw = openai.OpenAI(base_url=f"{base}/openai/v1", api_key=config["slow_token"], max_retries=0, timeout=0.8)
compare("openai client timeout before the head", "openai", lambda: openai_chat(slow_direct), lambda: openai_chat(slow_kw))


def head(url, headers):
    request = urllib.request.Request(url, method="HEAD", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return {"status": answer.status, "content-type": answer.headers.get("content-type"), "body": answer.read().decode()}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": error.read().decode()}


compare("HEAD /v1/models", "openai", lambda: head(mocks["openai"] + "/v1/models", {"Authorization": f"Bearer {keys['openai']}"}),
        lambda: head(f"{base}/openai/v1/models", {"Authorization": f"Bearer {token}"}))

# --- Anthropic ------------------------------------------------------------------------------------------------------
direct_anthropic = anthropic.Anthropic(base_url=mocks["anthropic"], api_key=keys["anthropic"], max_retries=0)
kw_anthropic = anthropic.Anthropic(base_url=f"{base}/anthropic", api_key=token, max_retries=0)


def anthropic_message(client):
    return client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=messages, temperature=1.0).model_dump(exclude={"id"})


def anthropic_stream(client):
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=messages) as stream:
        events = [event.type for event in stream]
        return {"events": events, "final": stream.get_final_message().model_dump(exclude={"id"})}


compare("anthropic message", "anthropic", lambda: anthropic_message(direct_anthropic), lambda: anthropic_message(kw_anthropic))
compare("anthropic stream", "anthropic", lambda: anthropic_stream(direct_anthropic), lambda: anthropic_stream(kw_anthropic))

# --- Google Gemini --------------------------------------------------------------------------------------------------
def gemini_client(url, key):
    return genai.Client(api_key=key, http_options={"base_url": url, "retry_options": None})


direct_gemini = gemini_client(mocks["gemini"], keys["gemini"])
kw_gemini = gemini_client(f"{base}/gemini", token)


def gemini_generate(client):
    return client.models.generate_content(model="gemini-2.5-flash", contents="Say hello, 1.0 times.").model_dump(exclude={"sdk_http_response", "create_time", "response_id"})


def gemini_stream(client):
    return [chunk.text for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="Say hello.")]


compare("gemini generateContent", "gemini", lambda: gemini_generate(direct_gemini), lambda: gemini_generate(kw_gemini))
compare("gemini streamGenerateContent", "gemini", lambda: gemini_stream(direct_gemini), lambda: gemini_stream(kw_gemini))


def gemini_upload(client, data):
    import io
    uploaded = client.files.upload(file=io.BytesIO(data), config={"mime_type": "text/plain", "display_name": "notes"})
    return {"name_prefix": uploaded.name.split("-")[0], "size": uploaded.size_bytes, "state": str(uploaded.state)}


# The session URL points at Keywarden: the bytes reach the vendor through it (the upload id differs per session).
upload_data = b"file bytes that must pass through Keywarden \x00\x01\xff"
uploaded = compare("gemini resumable upload", "gemini", lambda: gemini_upload(direct_gemini, upload_data),
                         lambda: gemini_upload(kw_gemini, upload_data), compare_requests=False)
legs = recorded("gemini")
report["gemini_upload"] = uploaded
report["gemini_upload_legs"] = [{"path": leg["path"], "command": leg["headers"].get("x-goog-upload-command"),
                                 "key_is_vendors": leg["headers"].get("x-goog-api-key") == keys["gemini"]} for leg in legs]

# Gemini's per-minute limit: a 429 with RetryInfo, then a call 1.5 s later is served (fresh keys each way).
per_minute_direct = gemini_client(mocks["gemini"], keys["gemini_perminute_direct"])
per_minute_kw = gemini_client(f"{base}/gemini", config["perminute_token"])
compare("gemini per-minute 429", "gemini", lambda: gemini_generate(per_minute_direct), lambda: gemini_generate(per_minute_kw), compare_requests=False)
compare("gemini call 1.5 s after the per-minute 429", "gemini", lambda: (time.sleep(1.5), gemini_generate(per_minute_direct))[1],
        lambda: (time.sleep(1.5), gemini_generate(per_minute_kw))[1], compare_requests=False)

# --- Mistral --------------------------------------------------------------------------------------------------------
direct_mistral = Mistral(api_key=keys["mistral"], server_url=mocks["mistral"])
kw_mistral = Mistral(api_key=token, server_url=f"{base}/mistral")


def mistral_chat(client):
    return client.chat.complete(model="mistral-small-latest", messages=messages, temperature=1.0).model_dump(exclude={"id", "created"})


def mistral_stream(client):
    return [event.data.choices[0].delta.content for event in client.chat.stream(model="mistral-small-latest", messages=messages)
            if event.data.choices]


compare("mistral chat", "mistral", lambda: mistral_chat(direct_mistral), lambda: mistral_chat(kw_mistral))
compare("mistral stream", "mistral", lambda: mistral_stream(direct_mistral), lambda: mistral_stream(kw_mistral),
        documented_body=without_stream_usage)

# --- ElevenLabs -----------------------------------------------------------------------------------------------------
direct_eleven = elevenlabs.ElevenLabs(api_key=keys["elevenlabs"], base_url=mocks["elevenlabs"])
kw_eleven = elevenlabs.ElevenLabs(api_key=token, base_url=f"{base}/elevenlabs")


def speech(client):
    audio = b"".join(client.text_to_speech.convert(voice_id="JBFqnCBsd6RMkjVDRZzb", text="Hello through Keywarden.", model_id="eleven_multilingual_v2"))
    return base64.b64encode(audio).decode()


compare("elevenlabs text to speech (binary audio)", "elevenlabs", lambda: speech(direct_eleven), lambda: speech(kw_eleven))

# --- WebSockets: OpenAI Realtime, ElevenLabs stream-input ---------------------------------------------------------
# The handshake is each WebSocket client's own (Keywarden's sends `Origin: <the vendor's scheme and host>`).
HANDSHAKE = {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol", "upgrade", "connection",
             "user-agent", "host", "origin"}


def session_comparable(request, documented_body=None):
    """A WebSocket session as the vendor saw it: its path, query, key and messages (the handshake is each client's own)."""
    entry = comparable(request)
    entry["headers"] = {k: v for k, v in entry["headers"].items() if k not in HANDSHAKE}
    entry["messages"] = request.get("messages")
    return entry


def realtime(client):
    events, usage = [], None
    with client.realtime.connect(model="gpt-realtime") as connection:
        connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        connection.conversation.item.create(item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello."}]})
        connection.response.create()
        for event in connection:
            events.append(event.type)
            if event.type == "response.output_text.delta":
                events.append(event.delta)
            if event.type == "response.done":
                usage = event.response.usage.model_dump()
                break
    return {"events": events, "usage": usage}


def stream_input(client):
    # The SDK always speaks wss:// (it replaces the scheme): pointed at a plain-HTTP base, it is told ws:// instead.
    client.text_to_speech._ws_base_url = client.text_to_speech._ws_base_url.replace("wss://", "ws://", 1)
    audio = b"".join(client.text_to_speech.convert_realtime(voice_id="JBFqnCBsd6RMkjVDRZzb", text=iter(["Hello through ", "Keywarden."]),
                                                            model_id="eleven_flash_v2_5"))
    return base64.b64encode(audio).decode()


compare("openai realtime session (WebSocket)", "openai", lambda: realtime(direct_openai), lambda: realtime(kw_openai), view=session_comparable,
        sessions=1)
compare("elevenlabs stream-input session (WebSocket)", "elevenlabs", lambda: stream_input(direct_eleven), lambda: stream_input(kw_eleven),
        view=session_comparable, sessions=1)

print(json.dumps(report, indent=1, default=str))
sys.exit(1 if report["differences"] else 0)
