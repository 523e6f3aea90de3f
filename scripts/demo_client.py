"""The demo's proof that the gateway's models answer: OpenAI's own Python client (the test venv's
pinned `openai`) asks `sagebridge serve` for a chat answer, the same answer streamed, and
embeddings. Usage: demo_client.py BASE_URL API_KEY. Exits non-zero when a model does not answer.
"""

import sys

import openai

base, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=30)
messages = [{"role": "user", "content": "Say hello"}]

answer = client.chat.completions.create(model="demo-chat", messages=messages)
print(f"   demo-chat (buffered): {answer.choices[0].message.content!r}")
print(f"     usage: {answer.usage.prompt_tokens} prompt + {answer.usage.completion_tokens} completion tokens")

chunks = []
for chunk in client.chat.completions.create(model="demo-chat", messages=messages, stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        chunks.append(chunk.choices[0].delta.content)
print(f"   demo-chat (streamed, {len(chunks)} chunks): {''.join(chunks)!r}")

vectors = client.embeddings.create(model="demo-embed", input=["a fraud model", "a churn model"])
print(f"   demo-embed: {len(vectors.data)} vectors of {len(vectors.data[0].embedding)} dimensions")

if not answer.choices[0].message.content or not chunks or not vectors.data:
    sys.exit("a demo model gave an empty answer")
