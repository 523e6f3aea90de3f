"""Drives the gateway's audio routes with the official `openai` client; prints one JSON line.

Run by crates/gateway/tests/http.rs with OPENAI_BASE_URL and OPENAI_API_KEY set.
"""
import io
import json
import math
import struct
import wave

import openai
from openai import OpenAI

client = OpenAI(timeout=20, max_retries=0)
out = {}

# Two seconds of a 440 Hz tone, 16 kHz mono 16-bit.
buf = io.BytesIO()
with wave.open(buf, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(16000)
    w.writeframes(
        b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000))) for i in range(32000))
    )
audio = buf.getvalue()

r = client.audio.transcriptions.create(model="whisper", file=("tone.wav", audio, "audio/wav"))
out["transcription"] = r.text
out["transcription_text"] = client.audio.transcriptions.create(
    model="whisper", file=("tone.wav", audio), response_format="text", language="en", temperature=0
)
out["translation"] = client.audio.translations.create(model="whisper", file=("tone.wav", audio)).text
v = client.audio.transcriptions.create(
    model="whisper", file=("tone.wav", audio), response_format="verbose_json"
)
out["verbose_duration"] = v.duration

speech = client.audio.speech.create(model="tts", voice="alloy", input="one two three", response_format="wav")
with wave.open(io.BytesIO(speech.content), "rb") as w:
    out["speech_seconds"] = w.getnframes() / w.getframerate()
    out["speech_channels"] = w.getnchannels()

try:
    client.audio.speech.create(model="tts", voice="alloy", input="hi", response_format="mp3")
    out["bad_format_status"] = "no error"
except openai.BadRequestError as err:
    out["bad_format_status"] = err.status_code
    out["bad_format_message"] = err.body["message"] if isinstance(err.body, dict) else str(err)

try:
    client.audio.transcriptions.create(model="chat-tgi", file=("tone.wav", audio))
    out["wrong_kind_status"] = "no error"
except openai.BadRequestError as err:
    out["wrong_kind_status"] = err.status_code

print(json.dumps(out))
