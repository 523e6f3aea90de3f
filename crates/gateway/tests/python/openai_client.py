"""Drives the gateway with the official `openai` client; prints one JSON line of results.

Run by crates/gateway/tests/http.rs with OPENAI_BASE_URL and OPENAI_API_KEY set.
"""
import json

import openai
from openai import OpenAI

client = OpenAI(timeout=20, max_retries=0)
messages = [{"role": "user", "content": "Say hello"}]
out = {}

r = client.chat.completions.create(model="chat-tgi", messages=messages)
out["chat"] = r.choices[0].message.content
out["chat_finish"] = r.choices[0].finish_reason

text, chunks, usage = "", 0, None
stream = client.chat.completions.create(
    model="chat-tgi", messages=messages, stream=True, stream_options={"include_usage": True}
)
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
        chunks += 1
out["stream"] = text
out["stream_chunks"] = chunks
out["stream_usage_completion_tokens"] = usage.completion_tokens if usage else None

# The client's default encoding is base64, which it decodes itself.
e = client.embeddings.create(model="embed-tei", input=["first", "second"])
out["embedding_dims"] = [len(d.embedding) for d in e.data]
out["embedding0"] = list(e.data[0].embedding)

try:
    for _ in client.chat.completions.create(model="chat-openai", messages=messages, stream=True):
        pass
    out["stream_error_status"] = "no error"
except openai.APIError as err:
    out["stream_error_status"] = type(err).__name__

try:
    client.chat.completions.create(model="no-such-model", messages=messages)
except openai.NotFoundError as err:
    out["unknown_model_status"] = err.status_code

try:
    OpenAI(api_key="wrong-key-123456", timeout=20, max_retries=0).models.list()
except openai.AuthenticationError as err:
    out["auth_status"] = err.status_code

print(json.dumps(out))
