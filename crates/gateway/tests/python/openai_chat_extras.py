"""Tool calls, images and reasoning through the gateway with the official `openai` client; prints
one JSON line of results.

Run by crates/gateway/tests/http.rs with OPENAI_BASE_URL and OPENAI_API_KEY set.
"""
import json

import openai
from openai import OpenAI

client = OpenAI(timeout=20, max_retries=0)
out = {}
messages = [{"role": "user", "content": "What is the weather in Paris?"}]
tools = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
    },
]


def call_json(call):
    return {"id": call.id, "name": call.function.name, "arguments": json.loads(call.function.arguments)}


r = client.chat.completions.create(model="chat-openai", messages=messages, tools=tools, tool_choice="auto")
out["tool_call"] = call_json(r.choices[0].message.tool_calls[0])
out["tool_finish"] = r.choices[0].finish_reason

# The client's stream helper reassembles the tool-call deltas into one call.
with client.chat.completions.stream(
    model="chat-openai", messages=messages, tools=tools, stream_options={"include_usage": True}
) as stream:
    for _ in stream:
        pass
    final = stream.get_final_completion()
out["stream_tool_call"] = call_json(final.choices[0].message.tool_calls[0])
out["stream_tool_finish"] = final.choices[0].finish_reason

r = client.chat.completions.create(
    model="chat-openai",
    messages=messages,
    tools=tools,
    tool_choice={"type": "function", "function": {"name": "get_time"}},
)
out["named_tool_call"] = call_json(r.choices[0].message.tool_calls[0])

# The tool's answer goes back; the model answers in text.
call = r.choices[0].message.tool_calls[0]
follow = messages + [
    r.choices[0].message.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": call.id, "content": "12:00"},
]
r = client.chat.completions.create(model="chat-openai", messages=follow, tools=tools)
out["after_tool"] = r.choices[0].message.content

try:
    client.chat.completions.create(
        model="chat-openai",
        messages=messages,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "no_such_tool"}},
    )
    out["bad_tool_choice_status"] = "no error"
except openai.BadRequestError as err:
    # The client's own class for a request to fix (it does not retry those).
    out["bad_tool_choice_status"] = err.status_code
    out["bad_tool_choice_code"] = err.code
except openai.APIStatusError as err:
    out["bad_tool_choice_status"] = err.status_code

png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
image_messages = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": png}},
        ],
    }
]
r = client.chat.completions.create(model="chat-vision", messages=image_messages)
out["image"] = r.choices[0].message.content
try:
    client.chat.completions.create(model="chat-openai", messages=image_messages)
    out["image_refused_status"] = "no error"
except openai.BadRequestError as err:
    out["image_refused_status"] = err.status_code

# `reasoning_content` is not a typed field of the client: it is read as an extra field.
r = client.chat.completions.create(model="chat-tgi", messages=[{"role": "user", "content": "Hi"}])
out["reasoning"] = getattr(r.choices[0].message, "reasoning_content", None)
out["reasoning_content"] = r.choices[0].message.content
reasoning, content = "", ""
for chunk in client.chat.completions.create(
    model="chat-tgi", messages=[{"role": "user", "content": "Hi"}], stream=True
):
    if chunk.choices:
        delta = chunk.choices[0].delta
        reasoning += getattr(delta, "reasoning_content", None) or ""
        content += delta.content or ""
out["stream_reasoning"] = reasoning
out["stream_content"] = content

print(json.dumps(out))
