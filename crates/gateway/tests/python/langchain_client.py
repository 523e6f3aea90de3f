"""Drives the gateway with langchain-openai (ChatOpenAI, OpenAIEmbeddings); prints one JSON line
of results.

Run by crates/gateway/tests/http.rs with OPENAI_BASE_URL and OPENAI_API_KEY set.
"""
import json

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings


@tool
def get_weather(city: str, unit: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


out = {}
llm = ChatOpenAI(model="chat-openai", timeout=20, max_retries=0, streaming=True)

chunks = list(llm.stream("Say hello"))
out["stream"] = "".join(c.content for c in chunks)
out["stream_chunks"] = sum(1 for c in chunks if c.content)

with_tools = llm.bind_tools([get_weather])
question = [HumanMessage("What is the weather in Paris?")]
answer = with_tools.invoke(question)
out["tool_calls"] = [{"name": c["name"], "args": c["args"], "id": c["id"]} for c in answer.tool_calls]

# Streamed tool-call deltas, added up by LangChain into one call.
gathered = None
for chunk in with_tools.stream(question):
    gathered = chunk if gathered is None else gathered + chunk
out["stream_tool_calls"] = [{"name": c["name"], "args": c["args"], "id": c["id"]} for c in gathered.tool_calls]

# The tool's answer goes back; the model answers in text.
follow = question + [answer, ToolMessage("sunny", tool_call_id=answer.tool_calls[0]["id"])]
out["after_tool"] = with_tools.invoke(follow).content

# LangChain sends token arrays unless told not to; the gateway takes text only.
emb = OpenAIEmbeddings(model="embed-tei", check_embedding_ctx_length=False, max_retries=0)
vectors = emb.embed_documents(["first", "second"])
out["embedding_dims"] = [len(v) for v in vectors]
out["embedding0"] = vectors[0]
out["query_dims"] = len(emb.embed_query("first"))

print(json.dumps(out))
