#!/usr/bin/env python3
"""One API: the official openai and anthropic SDKs, unchanged but for their base URL, served by keys at other vendors.

    python3 scripts/one-api-test.py CONFIG.json

CONFIG names Keywarden's base URL, service tokens of workspaces that each hold keys of one vendor only
(`tokens`: {"anthropic": ..., "gemini": ..., "openai": ...}), and for the exclusive-mode switch an admin token, a
workspace id (exclusive, OpenAI active) with its token, and an Anthropic secret to switch to. The vendors are the mock
vendors, which validate requests against each vendor's schema and refuse what the real one refuses.

Prints a JSON report of every check; exits non-zero when any fails.
"""
import base64
import json
import signal
import sys
import urllib.request

signal.signal(signal.SIGTERM, signal.SIG_DFL)

import anthropic
import openai

config = json.load(open(sys.argv[1]))
base = config["base"].rstrip("/")
tokens = config["tokens"]
report = {"versions": {"openai": openai.__version__, "anthropic": anthropic.__version__}, "checks": []}

MODELS = {"anthropic": "claude-sonnet-4-6", "gemini": "gemini-2.5-flash", "openai": "gpt-5.4-mini"}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather of a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                                                           "required": ["city"]}}}
ANTHROPIC_WEATHER = {"name": "get_weather", "description": "The weather of a city",
                     "input_schema": WEATHER["function"]["parameters"]}
# A 1x1 PNG.
PIXEL = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                       "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()


def check(name, ok, detail=""):
    report["checks"].append({"name": name, "ok": bool(ok), "detail": str(detail)[:600]})


def attempt(name, function):
    try:
        function()
    except Exception as error:  # a failure of the call is a failed check, and the run goes on
        check(name, False, f"{type(error).__name__}: {error}")


def openai_client(token):
    return openai.OpenAI(base_url=base + "/v1", api_key=token, max_retries=0, timeout=30)


def anthropic_client(token):
    return anthropic.Anthropic(base_url=base, api_key=token, max_retries=0, timeout=30)


def openai_calls(vendor):
    client = openai_client(tokens[vendor])
    model = MODELS[vendor]
    served = f"openai SDK served by {vendor}"

    def chat():
        raw = client.chat.completions.with_raw_response.create(model=model, messages=[
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}])
        answer = raw.parse()
        check(f"{served}: chat", answer.choices[0].message.content.startswith("Hello from the") and answer.choices[0].finish_reason == "stop"
              and answer.usage.prompt_tokens > 0 and raw.headers.get("x-keywarden-provider") == vendor
              and raw.headers.get("x-keywarden-model") == model, answer.model_dump_json())

    def stream():
        pieces, usage, finish = [], None, None
        for chunk in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello."}], stream=True,
                                                     stream_options={"include_usage": True}):
            if chunk.usage: usage = chunk.usage
            for choice in chunk.choices:
                if choice.delta.content: pieces.append(choice.delta.content)
                if choice.finish_reason: finish = choice.finish_reason
        text = "".join(pieces)
        check(f"{served}: stream", text.startswith("Hello from the") and len(pieces) > 1 and finish == "stop" and usage and usage.completion_tokens > 0,
              f"{pieces} {finish} {usage}")

    def tools():
        messages = [{"role": "user", "content": "What is the weather in Paris?"}]
        first = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
        calls = first.choices[0].message.tool_calls or []
        ok = first.choices[0].finish_reason == "tool_calls" and len(calls) == 1 and calls[0].function.name == "get_weather"
        args = json.loads(calls[0].function.arguments) if calls else {}
        messages.append(first.choices[0].message.model_dump(exclude_none=True))
        messages.append({"role": "tool", "tool_call_id": calls[0].id if calls else "none", "content": "Sunny, 21 C"})
        second = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
        text = second.choices[0].message.content or ""
        check(f"{served}: tools in a multi-turn loop", ok and "city" in args and "Sunny, 21 C" in text, f"{first.model_dump_json()} / {text}")

    def stream_tools():
        names, arguments = [], []
        for chunk in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER], stream=True):
            for choice in chunk.choices:
                for call in choice.delta.tool_calls or []:
                    if call.function and call.function.name: names.append(call.function.name)
                    if call.function and call.function.arguments: arguments.append(call.function.arguments)
        check(f"{served}: streamed tool call", names == ["get_weather"] and "city" in json.loads("".join(arguments)), f"{names} {arguments}")

    def structured():
        schema = {"type": "object", "properties": {"zeta": {"type": "string"}, "alpha": {"type": "string"}}, "required": ["zeta", "alpha"],
                  "additionalProperties": False}
        answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Fill it."}],
                                                response_format={"type": "json_schema", "json_schema": {"name": "filled", "schema": schema, "strict": True}})
        content = answer.choices[0].message.content or ""
        value = json.loads(content)
        check(f"{served}: structured output", set(value) == {"zeta", "alpha"} and answer.choices[0].finish_reason == "stop", content)

    def image():
        answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}}]}])
        check(f"{served}: image", (answer.choices[0].message.content or "").startswith("Hello from the"), answer.model_dump_json())

    def unsupported():
        try:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], logprobs=True)
            check(f"{served}: a field the vendor lacks is refused", False, "no error")
        except openai.BadRequestError as error:
            body = error.body if isinstance(error.body, dict) else {}
            check(f"{served}: a field the vendor lacks is refused", error.status_code == 400 and body.get("code") == "unsupported_for_provider"
                  and "logprobs" in str(body.get("message")), body)

    for name, function in [("chat", chat), ("stream", stream), ("tools", tools), ("stream tools", stream_tools), ("structured", structured),
                           ("image", image), ("unsupported", unsupported)]:
        attempt(f"{served}: {name}", function)


def responses_calls(vendor):
    """The openai SDK's Responses API: passed through to OpenAI, translated for the others."""
    client = openai_client(tokens[vendor])
    model = MODELS[vendor]
    served = f"openai SDK responses served by {vendor}"

    def create():
        raw = client.responses.with_raw_response.create(model=model, instructions="Be brief.", input="Say hello.", store=False)
        answer = raw.parse()
        check(f"{served}: create", answer.output_text.startswith("Hello from the") and answer.status == "completed" and answer.usage.input_tokens > 0
              and raw.headers.get("x-keywarden-provider") == vendor, answer.model_dump_json())

    def stream():
        deltas, final = [], None
        for event in client.responses.create(model=model, input="Say hello.", stream=True, store=False):
            if event.type == "response.output_text.delta": deltas.append(event.delta)
            if event.type == "response.completed": final = event.response
        check(f"{served}: stream", "".join(deltas).startswith("Hello from the") and len(deltas) > 1 and final is not None
              and final.output_text.startswith("Hello from the") and final.usage.output_tokens > 0, f"{deltas} {final}")

    def tools():
        tool = {"type": "function", "name": "get_weather", "description": "The weather of a city", "parameters": WEATHER["function"]["parameters"]}
        first = client.responses.create(model=model, input="What is the weather in Paris?", tools=[tool], store=False)
        calls = [item for item in first.output if item.type == "function_call"]
        ok = len(calls) == 1 and calls[0].name == "get_weather" and "city" in json.loads(calls[0].arguments)
        follow = [{"role": "user", "content": "What is the weather in Paris?"}] + [item.model_dump(exclude_none=True) for item in first.output]
        follow.append({"type": "function_call_output", "call_id": calls[0].call_id if calls else "none", "output": "Sunny, 21 C"})
        second = client.responses.create(model=model, input=follow, tools=[tool], store=False)
        check(f"{served}: tools in a multi-turn loop", ok and "Sunny, 21 C" in second.output_text, f"{first.model_dump_json()} / {second.output_text}")

    def stateless():
        try:
            client.responses.create(model=model, input="Hi", previous_response_id="resp_123", store=False)
            check(f"{served}: previous_response_id is refused", False, "no error")
        except openai.BadRequestError as error:
            body = error.body if isinstance(error.body, dict) else {}
            check(f"{served}: previous_response_id is refused", body.get("code") == "unsupported_for_provider", body)

    checks = [("create", create), ("stream", stream)]
    if vendor != "openai":
        checks += [("tools", tools), ("stateless", stateless)]
    for name, function in checks:
        attempt(f"{served}: {name}", function)


def anthropic_calls(vendor):
    client = anthropic_client(tokens[vendor])
    model = MODELS[vendor]
    served = f"anthropic SDK served by {vendor}"

    def message():
        raw = client.messages.with_raw_response.create(model=model, max_tokens=200, system="Be brief.", messages=[{"role": "user", "content": "Say hello."}])
        answer = raw.parse()
        check(f"{served}: message", answer.content[0].type == "text" and answer.content[0].text.startswith("Hello from the")
              and answer.stop_reason == "end_turn" and answer.usage.input_tokens > 0 and raw.headers.get("x-keywarden-provider") == vendor,
              answer.model_dump_json())

    def stream():
        with client.messages.stream(model=model, max_tokens=200, messages=[{"role": "user", "content": "Say hello."}]) as events:
            pieces = [text for text in events.text_stream]
            final = events.get_final_message()
        check(f"{served}: stream", "".join(pieces).startswith("Hello from the") and len(pieces) > 1 and final.stop_reason == "end_turn"
              and final.usage.output_tokens > 0, f"{pieces} {final.model_dump_json()}")

    def tools():
        messages = [{"role": "user", "content": "What is the weather in Paris?"}]
        first = client.messages.create(model=model, max_tokens=300, messages=messages, tools=[ANTHROPIC_WEATHER])
        uses = [block for block in first.content if block.type == "tool_use"]
        ok = first.stop_reason == "tool_use" and len(uses) == 1 and uses[0].name == "get_weather" and "city" in uses[0].input
        messages.append({"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]})
        messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id if uses else "none", "content": "Sunny, 21 C"}]})
        second = client.messages.create(model=model, max_tokens=300, messages=messages, tools=[ANTHROPIC_WEATHER])
        text = "".join(block.text for block in second.content if block.type == "text")
        check(f"{served}: tools in a multi-turn loop", ok and "Sunny, 21 C" in text, f"{first.model_dump_json()} / {text}")

    def thinking():
        answer = client.messages.create(model=model, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048},
                                        messages=[{"role": "user", "content": "Think, then say hello."}])
        kinds = [block.type for block in answer.content]
        texts = "".join(block.text for block in answer.content if block.type == "text")
        # OpenAI's Chat Completions returns no reasoning text: only Gemini's thoughts come back as thinking blocks.
        wants_thinking = vendor == "gemini"
        check(f"{served}: thinking", texts.startswith("Hello from the") and (("thinking" in kinds) == wants_thinking), kinds)

    for name, function in [("message", message), ("stream", stream), ("tools", tools), ("thinking", thinking)]:
        attempt(f"{served}: {name}", function)


def exclusive_switch():
    """A workspace in exclusive mode switches from OpenAI to Anthropic; the same client code (model "default") keeps working."""
    switch = config["exclusive"]
    client = openai_client(switch["token"])

    def ask():
        raw = client.chat.completions.with_raw_response.create(model="default", messages=[{"role": "user", "content": "Say hello."}])
        return raw.headers.get("x-keywarden-provider"), raw.parse().choices[0].message.content or ""

    before = ask()
    request = urllib.request.Request(f"{base}/api/v1/workspaces/{switch['workspace']}/keys?switch=true", method="POST",
                                     data=json.dumps({"provider": "anthropic", "api_key": switch["anthropic_secret"], "description": "switched",
                                                      "role": "primary", "active": True}).encode(),
                                     headers={"Authorization": f"Bearer {switch['admin_token']}", "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()
    after = None
    for _ in range(50):  # the change reaches the gateway within milliseconds
        after = ask()
        if after[0] == "anthropic": break
    check("exclusive mode switched from OpenAI to Anthropic; the same client code keeps working",
          before[0] == "openai" and after[0] == "anthropic" and before[1].startswith("Hello from the") and after[1].startswith("Hello from the"),
          f"{before} {after}")


for vendor in ["anthropic", "gemini"]:
    openai_calls(vendor)
for vendor in ["openai", "gemini"]:
    anthropic_calls(vendor)
for vendor in ["openai", "anthropic", "gemini"]:
    responses_calls(vendor)
attempt("exclusive switch", exclusive_switch)

failed = [c for c in report["checks"] if not c["ok"]]
report["failed"] = len(failed)
print(json.dumps(report, indent=1))
sys.exit(1 if failed else 0)
