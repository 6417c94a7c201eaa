#!/usr/bin/env python3
"""The official vendor SDKs through the Keywarden gateway, with only base_url and api_key changed.

    python3 scripts/sdk-test.py http://127.0.0.1:PORT kw_SERVICE_TOKEN

Prints one JSON object with what each SDK call returned; exits non-zero on the first failure.
Used by the Swift integration tests (against the mock vendors) and usable against a real deployment.
"""
import json
import signal
import sys

signal.signal(signal.SIGTERM, signal.SIG_DFL)

import anthropic
import openai

base, token = sys.argv[1].rstrip("/"), sys.argv[2]
results = {"openai_version": openai.__version__, "anthropic_version": anthropic.__version__}
messages = [{"role": "user", "content": "Say hello through Keywarden."}]

# OpenAI's SDK on the native face: base_url is the vendor's, under /openai.
native = openai.OpenAI(base_url=f"{base}/openai/v1", api_key=token, max_retries=0)
reply = native.chat.completions.create(model="gpt-5.4-mini", messages=messages)
results["openai_chat"] = {"text": reply.choices[0].message.content, "prompt_tokens": reply.usage.prompt_tokens,
                          "completion_tokens": reply.usage.completion_tokens}
raw = native.chat.completions.with_raw_response.create(model="gpt-5.4-mini", messages=messages)
results["openai_headers"] = {k: v for k, v in raw.headers.items() if k.lower().startswith("x-keywarden-")}

pieces, usage = [], None
for chunk in native.chat.completions.create(model="gpt-5.4-mini", messages=messages, stream=True,
                                            stream_options={"include_usage": True}):
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    if chunk.usage:
        usage = chunk.usage
results["openai_stream"] = {"text": "".join(pieces), "chunks": len(pieces), "completion_tokens": usage.completion_tokens if usage else None}

# A stream that does not ask for usage: every chunk has a choice (the gateway asks the vendor for usage to
# meter the call, and keeps that extra usage-only chunk from this caller), so code reading choices[0] works.
plain_pieces = [chunk.choices[0].delta.content or "" for chunk in
                native.chat.completions.create(model="gpt-5.4-mini", messages=messages, stream=True)]
results["openai_stream_unasked"] = {"text": "".join(plain_pieces)}

# OpenAI's SDK on the OpenAI-compatible face, routed by model to Anthropic.
compatible = openai.OpenAI(base_url=f"{base}/v1", api_key=token, max_retries=0)
routed = compatible.chat.completions.with_raw_response.create(model="claude-sonnet-4-6", messages=messages)
results["compatible_chat"] = {"text": routed.parse().choices[0].message.content,
                              "provider": routed.headers.get("x-keywarden-provider")}

# Anthropic's SDK on the native face.
client = anthropic.Anthropic(base_url=f"{base}/anthropic", api_key=token, max_retries=0)
message = client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=messages)
results["anthropic_message"] = {"text": message.content[0].text, "input_tokens": message.usage.input_tokens,
                                "output_tokens": message.usage.output_tokens}
with client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=messages) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
results["anthropic_stream"] = {"text": text, "output_tokens": final.usage.output_tokens}

# What the cards promise (seed 000): a call that leaves a value out gets the serving key's. The SDKs' typed methods
# require model and max_tokens, so these go through each SDK's own request method with the fields left out.
left_out = client.post("/v1/messages", cast_to=anthropic.types.Message, body={"messages": messages})
results["anthropic_defaults"] = {"text": left_out.content[0].text, "model": left_out.model}
defaulted = compatible.chat.completions.with_raw_response.create(model="default", messages=messages,
                                                                 extra_headers={"X-Keywarden-Provider": "anthropic"})
results["compatible_default_model"] = {"text": defaulted.parse().choices[0].message.content,
                                       "model": defaulted.headers.get("x-keywarden-model")}

# A refused call surfaces as the SDK's own error type.
try:
    openai.OpenAI(base_url=f"{base}/openai/v1", api_key="kw_" + "x" * 43, max_retries=0).models.list()
    results["bad_token"] = "accepted"
except openai.AuthenticationError as error:
    results["bad_token"] = error.status_code

print(json.dumps(results))
