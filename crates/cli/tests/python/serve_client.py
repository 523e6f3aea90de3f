"""Drives a running `sagebridge serve` with the official `openai` client; prints one JSON line.

Run by crates/cli/tests/serve.rs with OPENAI_BASE_URL and OPENAI_API_KEY set.
"""
import json

import openai
from openai import OpenAI

client = OpenAI(timeout=20, max_retries=0)
messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
out = {}

r = client.chat.completions.create(model="chat-tgi", messages=messages, max_tokens=50)
out["chat"] = r.choices[0].message.content
out["chat_finish"] = r.choices[0].finish_reason
out["chat_model"] = r.model

r = client.chat.completions.create(model="chat-openai", messages=messages)
out["chat_openai"] = r.choices[0].message.content
out["chat_openai_total_tokens"] = r.usage.total_tokens

text, chunks, finish, usage = "", 0, None, None
stream = client.chat.completions.create(
    model="chat-tgi", messages=messages, stream=True, stream_options={"include_usage": True}
)
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            text += choice.delta.content
            chunks += 1
        if choice.finish_reason:
            finish = choice.finish_reason
out["stream"] = text
out["stream_chunks"] = chunks
out["stream_finish"] = finish
out["stream_usage_completion_tokens"] = usage.completion_tokens if usage else None

# The client asks for base64 by default and decodes it itself.
e = client.embeddings.create(model="embed-tei", input=["first", "second", "third"])
out["embedding_dims"] = [len(d.embedding) for d in e.data]
out["embedding1"] = list(e.data[1].embedding)
out["embedding_prompt_tokens"] = e.usage.prompt_tokens
e = client.embeddings.create(model="embed-tei", input="first", dimensions=4, encoding_format="float")
out["embedding_short"] = list(e.data[0].embedding)

try:
    client.embeddings.create(model="embed-tei", input="first", dimensions=99)
    out["too_many_dims_status"] = "no error"
except openai.BadRequestError as err:
    out["too_many_dims_status"] = err.status_code

try:
    client.chat.completions.create(model="no-such-model", messages=messages)
    out["unknown_model_status"] = "no error"
except openai.NotFoundError as err:
    out["unknown_model_status"] = err.status_code

print(json.dumps(out))
