//! Audio adapters: speech recognition (`transcription` models) and speech synthesis
//! (`speech` models).
//!
//! - `huggingface` transcription: the Hugging Face inference toolkit's raw-audio contract for
//!   the `automatic-speech-recognition` pipeline. The audio file is the InvokeEndpoint body,
//!   sent with its audio content type (`audio/wav`, `audio/mpeg`, `audio/flac`, ...); the
//!   toolkit decodes it with ffmpeg and answers `{"text": "..."}` (plus `chunks` with
//!   `timestamp: [start, end]` when the endpoint returns timestamps). The raw contract carries
//!   no parameters: `language`, `prompt`, `temperature` and the task (transcribe or translate)
//!   are the endpoint's own, so a translation endpoint is configured as a model of its own.
//! - `jumpstart` transcription: SageMaker JumpStart's Whisper containers
//!   (`jumpstart-openai-whisper-*`, e.g. `huggingface-asr-whisper-large-v2`). The WAV file is the
//!   body with content type `audio/wav` (the container refuses other names for it, e.g.
//!   `audio/x-audio` is answered 400 "unsupported content type"), and the answer is
//!   `{"text": ["..."]}`: a list of one transcript. Source: the realtime JumpStart notebook of
//!   aws-samples/aws-kr-startup-samples
//!   (`machine-learning/sagemaker/whisper-model-hosting-on-sagemaker-endpoint/sagemaker-realtime-inference/jumpstart/src/notebook/realtime-jumpstart.ipynb`),
//!   which records both answers against `jumpstart-openai-whisper-medium`. Like the raw
//!   Hugging Face contract it carries no parameters.
//! - `openai` speech: the body of OpenAI's `POST /v1/audio/speech` (`model`, `input`, `voice`,
//!   `response_format`, `speed`), as OpenAI-compatible TTS servers take it; the container
//!   answers the audio itself, which is passed through with its content type.

use serde_json::{json, Map, Value};

use crate::adapter::bad_upstream;
use crate::audio::{speech_mime, Segment, SpeechRequest};
use crate::config::Format;
use crate::error::GatewayError;

/// One InvokeEndpoint call: the body and its content types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub body: Vec<u8>,
    pub content_type: String,
    pub accept: String,
}

/// What a transcription request asks of the container besides the audio.
#[derive(Debug, Clone, Default)]
pub struct TranscriptionAsk<'a> {
    /// `transcribe` or `translate`.
    pub task: &'a str,
    pub language: Option<&'a str>,
    pub prompt: Option<&'a str>,
    pub temperature: Option<f32>,
}

/// The container's transcript of one piece of audio.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transcript {
    pub text: String,
    /// Timed pieces, in seconds from the start of the audio sent, when the container gives them.
    pub segments: Vec<Segment>,
    /// The language the container detected, if it says.
    pub language: Option<String>,
}

/// A speech-recognition container family.
pub trait TranscriptionAdapter: Send + Sync + std::fmt::Debug {
    fn format(&self) -> Format;
    /// The invocation for `audio` (of `content_type`).
    fn encode(&self, audio: &[u8], content_type: &str, ask: &TranscriptionAsk<'_>) -> Invocation;
    fn decode(&self, body: &[u8]) -> Result<Transcript, GatewayError>;
}

/// A speech-synthesis container family.
pub trait SpeechAdapter: Send + Sync + std::fmt::Debug {
    /// The `response_format`s the container produces; the first is the default.
    fn formats(&self) -> &[String];
    /// The invocation for `req`, asking for `format` (one of [`formats`](Self::formats)).
    fn encode(&self, req: &SpeechRequest, model: &str, format: &str) -> Invocation;
}

/// The Hugging Face inference toolkit's raw-audio contract.
#[derive(Debug, Clone, Copy)]
pub struct HuggingFaceTranscription;

impl TranscriptionAdapter for HuggingFaceTranscription {
    fn format(&self) -> Format {
        Format::Huggingface
    }

    fn encode(&self, audio: &[u8], content_type: &str, _ask: &TranscriptionAsk<'_>) -> Invocation {
        Invocation {
            body: audio.to_vec(),
            content_type: content_type.to_owned(),
            accept: "application/json".to_owned(),
        }
    }

    fn decode(&self, body: &[u8]) -> Result<Transcript, GatewayError> {
        let v: Value = serde_json::from_slice(body).map_err(|_| bad_upstream("JSON", body))?;
        // Some handlers answer a one-element list.
        let v = match v {
            Value::Array(mut a) if a.len() == 1 => a.remove(0),
            v => v,
        };
        let text = v
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_upstream("a transcript (`{\"text\": ...}`)", body))?;
        let segments = v
            .get("chunks")
            .and_then(Value::as_array)
            .map(|chunks| {
                chunks
                    .iter()
                    .filter_map(|c| {
                        let ts = c.get("timestamp")?.as_array()?;
                        let start = ts.first()?.as_f64()?;
                        // The last chunk of a cut recording may have no end.
                        let end = ts.get(1).and_then(Value::as_f64).unwrap_or(start);
                        Some(Segment {
                            start,
                            end,
                            text: c.get("text")?.as_str()?.to_owned(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Transcript {
            text: text.to_owned(),
            segments,
            language: v.get("language").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

/// SageMaker JumpStart's Whisper contract (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct JumpStartTranscription;

impl TranscriptionAdapter for JumpStartTranscription {
    fn format(&self) -> Format {
        Format::Jumpstart
    }

    fn encode(&self, audio: &[u8], content_type: &str, _ask: &TranscriptionAsk<'_>) -> Invocation {
        // The container knows WAV as `audio/wav` only; browsers and clients also say
        // `audio/x-wav`, `audio/wave` or `audio/vnd.wave`.
        let content_type = match content_type {
            "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "audio/wav",
            other => other,
        };
        Invocation {
            body: audio.to_vec(),
            content_type: content_type.to_owned(),
            accept: "application/json".to_owned(),
        }
    }

    fn decode(&self, body: &[u8]) -> Result<Transcript, GatewayError> {
        let v: Value = serde_json::from_slice(body).map_err(|_| bad_upstream("JSON", body))?;
        let text = match v.get("text") {
            Some(Value::Array(parts)) => parts
                .iter()
                .map(|p| p.as_str().map(str::trim))
                .collect::<Option<Vec<_>>>()
                .map(|parts| parts.join(" ")),
            Some(Value::String(t)) => Some(t.trim().to_owned()),
            _ => None,
        }
        .ok_or_else(|| bad_upstream("a transcript (`{\"text\": [...]}`)", body))?;
        Ok(Transcript {
            text,
            ..Transcript::default()
        })
    }
}

/// OpenAI's speech request, for OpenAI-compatible TTS containers.
#[derive(Debug, Clone)]
pub struct OpenAiSpeech {
    pub formats: Vec<String>,
}

impl SpeechAdapter for OpenAiSpeech {
    fn formats(&self) -> &[String] {
        &self.formats
    }

    fn encode(&self, req: &SpeechRequest, model: &str, format: &str) -> Invocation {
        let mut m = Map::new();
        m.insert("model".into(), json!(model));
        m.insert("input".into(), json!(req.input));
        if let Some(v) = &req.voice {
            m.insert("voice".into(), json!(v));
        }
        m.insert("response_format".into(), json!(format));
        if let Some(s) = req.speed {
            m.insert("speed".into(), json!(s));
        }
        Invocation {
            body: Value::Object(m).to_string().into_bytes(),
            content_type: "application/json".to_owned(),
            accept: speech_mime(format).to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huggingface_transcripts_with_and_without_chunks() {
        let a = HuggingFaceTranscription;
        let inv = a.encode(b"RIFF", "audio/wav", &TranscriptionAsk::default());
        assert_eq!(
            (inv.body.as_slice(), inv.content_type.as_str()),
            (&b"RIFF"[..], "audio/wav")
        );
        assert_eq!(a.decode(br#"{"text":" hi"}"#).unwrap().text, " hi");
        assert_eq!(a.decode(br#"[{"text":"x"}]"#).unwrap().text, "x");
        let t = a
            .decode(br#"{"text":"a b","chunks":[{"timestamp":[0.0,1.5],"text":"a"},{"timestamp":[1.5,null],"text":" b"}]}"#)
            .unwrap();
        assert_eq!(t.segments.len(), 2);
        assert_eq!((t.segments[1].start, t.segments[1].end), (1.5, 1.5));
        let e = a.decode(br#"{"generated_text":"x"}"#).unwrap_err();
        assert_eq!(e.code(), "bad_upstream_response");
    }

    #[test]
    fn jumpstart_transcripts_are_a_list_of_one_and_wav_is_audio_wav() {
        let a = JumpStartTranscription;
        let t = a
            .decode(br#"{"text": [" I wanted to share a few things."]}"#)
            .unwrap();
        assert_eq!(t.text, "I wanted to share a few things.");
        assert_eq!(a.decode(br#"{"text": "plain"}"#).unwrap().text, "plain");
        assert!(a.decode(br#"{"transcript": "x"}"#).is_err());
        let ask = TranscriptionAsk::default();
        assert_eq!(
            a.encode(b"RIFF", "audio/x-wav", &ask).content_type,
            "audio/wav"
        );
        assert_eq!(
            a.encode(b"ID3", "audio/mpeg", &ask).content_type,
            "audio/mpeg"
        );
    }

    #[test]
    fn openai_speech_body() {
        let a = OpenAiSpeech {
            formats: vec!["wav".into()],
        };
        let req =
            SpeechRequest::parse(br#"{"model":"tts","input":"hello","voice":"alloy"}"#).unwrap();
        let inv = a.encode(&req, "tts", "wav");
        let v: Value = serde_json::from_slice(&inv.body).unwrap();
        assert_eq!(
            v,
            json!({"model": "tts", "input": "hello", "voice": "alloy", "response_format": "wav"})
        );
        assert_eq!(inv.accept, "audio/wav");
    }
}
