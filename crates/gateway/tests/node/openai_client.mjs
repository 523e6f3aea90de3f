// Drives the gateway with the official `openai` npm package; prints one JSON line of results.
// Run by crates/gateway/tests/http.rs with OPENAI_BASE_URL and OPENAI_API_KEY set, after
// `npm ci` in this folder (scripts/test.sh does it).
import OpenAI from "openai";

const client = new OpenAI({ timeout: 20_000, maxRetries: 0 });
const messages = [{ role: "user", content: "Say hello" }];
const out = {};

const r = await client.chat.completions.create({ model: "chat-tgi", messages });
out.chat = r.choices[0].message.content;
out.chat_finish = r.choices[0].finish_reason;

let text = "";
let chunks = 0;
let usage = null;
const stream = await client.chat.completions.create({
  model: "chat-openai",
  messages,
  stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  const delta = chunk.choices[0]?.delta?.content;
  if (delta) {
    text += delta;
    chunks += 1;
  }
}
out.stream = text;
out.stream_chunks = chunks;
out.stream_usage_completion_tokens = usage ? usage.completion_tokens : null;

// The package asks for base64 by default and decodes it itself.
const e = await client.embeddings.create({ model: "embed-tei", input: ["first", "second"] });
out.embedding_dims = e.data.map((d) => d.embedding.length);
out.embedding0 = Array.from(e.data[0].embedding);
const f = await client.embeddings.create({
  model: "embed-tei",
  input: "first",
  encoding_format: "float",
});
out.embedding_float0 = f.data[0].embedding;

try {
  await client.chat.completions.create({ model: "no-such-model", messages });
  out.unknown_model_status = "no error";
} catch (err) {
  out.unknown_model_status = err instanceof OpenAI.NotFoundError ? err.status : String(err);
}

console.log(JSON.stringify(out));
