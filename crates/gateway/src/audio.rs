//! Audio requests: OpenAI's multipart form of `POST /v1/audio/transcriptions` (and
//! `/translations`), the JSON body of `POST /v1/audio/speech`, WAV headers and their
//! splitting by time, and the text formats of a transcript (`text`, `srt`, `vtt`, `json`,
//! `verbose_json`).
//!
//! The multipart parser works on the whole body, which the router has already bounded by
//! `server.maxRequestBytes`; every loop is bounded by the number of parts it accepts.

use serde_json::{json, Map, Value};

use crate::api::{parse_object, required_str};
use crate::config::SPEECH_FORMATS;
use crate::error::GatewayError;

/// Parts of one multipart form at most (OpenAI's form has under ten fields).
const MAX_PARTS: usize = 64;
/// OpenAI's limit on the text of one speech request.
pub const MAX_SPEECH_INPUT_CHARS: usize = 4096;

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: &'a [u8],
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() || from > hay.len() - needle.len() {
        return None;
    }
    let first = needle[0];
    let last_start = hay.len() - needle.len();
    let mut i = from;
    while i <= last_start {
        match hay[i..=last_start].iter().position(|&b| b == first) {
            None => return None,
            Some(off) => {
                let at = i + off;
                if &hay[at..at + needle.len()] == needle {
                    return Some(at);
                }
                i = at + 1;
            }
        }
    }
    None
}

/// The boundary of a `multipart/form-data` content type, or `None` for any other type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let mime = params.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

/// A parameter (`name="x"`) of a part's `Content-Disposition`.
fn disposition_param(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn bad_form(message: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest {
        message: message.into(),
        param: None,
    }
}

/// The parts of a `multipart/form-data` body with `boundary`.
pub fn parse_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, GatewayError> {
    let open = format!("--{boundary}");
    let delim = format!("\r\n--{boundary}");
    let start = find(body, open.as_bytes(), 0)
        .ok_or_else(|| bad_form("the multipart body has no part (its boundary never appears)"))?;
    let mut pos = start + open.len();
    let mut parts = Vec::new();
    for _ in 0..=MAX_PARTS {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        if !rest.starts_with(b"\r\n") {
            return Err(bad_form("the multipart body is malformed after a boundary"));
        }
        if parts.len() == MAX_PARTS {
            return Err(bad_form(format!(
                "the multipart body has more than {MAX_PARTS} parts"
            )));
        }
        let head_start = pos + 2;
        let head_end = find(body, b"\r\n\r\n", head_start)
            .ok_or_else(|| bad_form("a multipart part has no end of headers"))?;
        let head = std::str::from_utf8(&body[head_start..head_end])
            .map_err(|_| bad_form("a multipart part's headers are not UTF-8"))?;
        let (mut name, mut filename, mut content_type) = (None, None, None);
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_param(v, "name");
                filename = disposition_param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_owned());
            }
        }
        let data_start = head_end + 4;
        let data_end = find(body, delim.as_bytes(), data_start)
            .ok_or_else(|| bad_form("a multipart part is not closed by the boundary"))?;
        parts.push(Part {
            name: name.ok_or_else(|| bad_form("a multipart part has no name"))?,
            filename,
            content_type,
            data: &body[data_start..data_end],
        });
        pos = data_end + delim.len();
    }
    Err(bad_form(format!(
        "the multipart body has more than {MAX_PARTS} parts"
    )))
}

/// The `model` field of a multipart body, if it has a readable one (for API-key checks).
pub fn multipart_model(content_type: &str, body: &[u8]) -> Option<String> {
    let b = boundary(content_type)?;
    let parts = parse_multipart(body, &b).ok()?;
    parts
        .iter()
        .find(|p| p.name == "model")
        .and_then(|p| std::str::from_utf8(p.data).ok())
        .map(|s| s.trim().to_owned())
}

/// What a transcript is answered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl TranscriptFormat {
    const ALL: &'static str = "json, text, srt, vtt, verbose_json";

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "json" => Self::Json,
            "text" => Self::Text,
            "srt" => Self::Srt,
            "vtt" => Self::Vtt,
            "verbose_json" => Self::VerboseJson,
            _ => return None,
        })
    }
}

/// A transcription (or translation) request.
#[derive(Debug, Clone)]
pub struct TranscriptionRequest<'a> {
    pub model: String,
    pub file: &'a [u8],
    pub filename: Option<String>,
    /// The audio's content type: the part's when it is an audio type, else guessed from the
    /// file name or its first bytes.
    pub content_type: String,
    pub language: Option<String>,
    pub prompt: Option<String>,
    pub response_format: TranscriptFormat,
    pub temperature: Option<f32>,
}

fn field_text(p: &Part<'_>) -> Result<String, GatewayError> {
    std::str::from_utf8(p.data)
        .map(|s| s.trim().to_owned())
        .map_err(|_| GatewayError::bad_request(&p.name, format!("`{}` is not UTF-8 text", p.name)))
}

/// The audio content type of a file: WAV by its header, else the part's type when it is an
/// audio type, else by the file name's extension.
fn audio_content_type(data: &[u8], declared: Option<&str>, filename: Option<&str>) -> String {
    if data.len() >= 12 && &data[0..4] == b"RIFF" && &data[8..12] == b"WAVE" {
        return "audio/wav".to_owned();
    }
    if let Some(t) = declared {
        let t = t
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if t.starts_with("audio/") {
            return t;
        }
    }
    let ext = filename
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mp3" | "mpga" | "mpeg" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" | "oga" => "audio/ogg",
        "webm" => "audio/webm",
        "m4a" | "mp4" => "audio/mp4",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
    .to_owned()
}

impl<'a> TranscriptionRequest<'a> {
    /// Reads OpenAI's form: `file` and `model` required, the rest optional.
    pub fn parse(content_type: Option<&str>, body: &'a [u8]) -> Result<Self, GatewayError> {
        let boundary = content_type.and_then(boundary).ok_or_else(|| {
            bad_form("send the request as multipart/form-data (fields `file` and `model`), as OpenAI's audio API takes it")
        })?;
        let parts = parse_multipart(body, &boundary)?;
        let get = |name: &str| parts.iter().find(|p| p.name == name);
        let text = |name: &str| -> Result<Option<String>, GatewayError> {
            get(name).map(field_text).transpose()
        };
        let model = text("model")?
            .filter(|m| !m.is_empty())
            .ok_or_else(|| GatewayError::bad_request("model", "`model` is required"))?;
        let file = get("file").ok_or_else(|| {
            GatewayError::bad_request("file", "`file` is required: the audio file to transcribe")
        })?;
        if file.data.is_empty() {
            return Err(GatewayError::bad_request("file", "`file` is empty"));
        }
        let response_format = match text("response_format")? {
            None => TranscriptFormat::Json,
            Some(s) if s.is_empty() => TranscriptFormat::Json,
            Some(s) => TranscriptFormat::parse(&s).ok_or_else(|| {
                GatewayError::bad_request(
                    "response_format",
                    format!(
                        "`response_format` `{s}` is not supported; use one of: {}",
                        TranscriptFormat::ALL
                    ),
                )
            })?,
        };
        let temperature = match text("temperature")? {
            None => None,
            Some(s) if s.is_empty() => None,
            Some(s) => {
                let t: f32 = s.parse().map_err(|_| {
                    GatewayError::bad_request(
                        "temperature",
                        format!("`temperature` `{s}` is not a number"),
                    )
                })?;
                if !(0.0..=1.0).contains(&t) {
                    return Err(GatewayError::bad_request(
                        "temperature",
                        "`temperature` must be between 0 and 1",
                    ));
                }
                Some(t)
            }
        };
        Ok(Self {
            model,
            file: file.data,
            filename: file.filename.clone(),
            content_type: audio_content_type(
                file.data,
                file.content_type.as_deref(),
                file.filename.as_deref(),
            ),
            language: text("language")?.filter(|s| !s.is_empty()),
            prompt: text("prompt")?.filter(|s| !s.is_empty()),
            response_format,
            temperature,
        })
    }
}

/// A speech request (`POST /v1/audio/speech`).
#[derive(Debug, Clone)]
pub struct SpeechRequest {
    pub model: String,
    pub input: String,
    pub voice: Option<String>,
    /// As asked; `None` means the model's first format.
    pub response_format: Option<String>,
    pub speed: Option<f64>,
}

impl SpeechRequest {
    pub fn parse(body: &[u8]) -> Result<Self, GatewayError> {
        let m: Map<String, Value> = parse_object(body)?;
        let model = required_str(&m, "model")?;
        let input = required_str(&m, "input")?;
        if input.is_empty() {
            return Err(GatewayError::bad_request("input", "`input` is empty"));
        }
        if input.chars().count() > MAX_SPEECH_INPUT_CHARS {
            return Err(GatewayError::bad_request(
                "input",
                format!("`input` is longer than {MAX_SPEECH_INPUT_CHARS} characters; split it into several requests"),
            ));
        }
        let opt_str = |k: &str| -> Result<Option<String>, GatewayError> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(GatewayError::bad_request(
                    k,
                    format!("`{k}` must be a string"),
                )),
            }
        };
        let response_format = opt_str("response_format")?;
        if let Some(f) = &response_format {
            if !SPEECH_FORMATS.contains(&f.as_str()) {
                return Err(GatewayError::bad_request(
                    "response_format",
                    format!(
                        "`response_format` `{f}` is not an audio format; use one of: {}",
                        SPEECH_FORMATS.join(", ")
                    ),
                ));
            }
        }
        let speed = match m.get("speed") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let s = v.as_f64().ok_or_else(|| {
                    GatewayError::bad_request("speed", "`speed` must be a number")
                })?;
                if !(0.25..=4.0).contains(&s) {
                    return Err(GatewayError::bad_request(
                        "speed",
                        "`speed` must be between 0.25 and 4",
                    ));
                }
                Some(s)
            }
        };
        Ok(Self {
            model,
            input,
            voice: opt_str("voice")?,
            response_format,
            speed,
        })
    }
}

/// The MIME type of a speech `response_format`.
pub fn speech_mime(format: &str) -> &'static str {
    match format {
        "mp3" => "audio/mpeg",
        "opus" => "audio/ogg",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "pcm" => "audio/pcm",
        _ => "application/octet-stream",
    }
}

/// The layout of a PCM WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wav {
    pub channels: u16,
    pub sample_rate: u32,
    pub bits_per_sample: u16,
    /// Bytes per frame (all channels of one sample).
    pub block_align: u16,
    /// Where the samples start and how many bytes they take.
    pub data_offset: usize,
    pub data_len: usize,
}

impl Wav {
    /// Reads the `fmt ` and `data` chunks of a RIFF/WAVE file; `None` when it is not a PCM
    /// WAV file (format 1, or WAVE_FORMAT_EXTENSIBLE) the gateway can cut by time.
    pub fn parse(b: &[u8]) -> Option<Wav> {
        if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
            return None;
        }
        let u16_at = |i: usize| Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?));
        let u32_at = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
        let mut pos = 12;
        let mut fmt = None;
        // Bounded: a WAV file has a handful of chunks before its samples.
        for _ in 0..64 {
            let id = b.get(pos..pos + 4)?;
            let size = u32_at(pos + 4)? as usize;
            let body = pos + 8;
            if id == b"fmt " {
                let format = u16_at(body)?;
                if format != 1 && format != 0xFFFE {
                    return None;
                }
                fmt = Some((
                    u16_at(body + 2)?,
                    u32_at(body + 4)?,
                    u16_at(body + 12)?,
                    u16_at(body + 14)?,
                ));
            } else if id == b"data" {
                let (channels, sample_rate, block_align, bits_per_sample) = fmt?;
                if channels == 0 || sample_rate == 0 || block_align == 0 {
                    return None;
                }
                // Streams written before their length was known say 0 or u32::MAX.
                let available = b.len() - body;
                let data_len = if size == 0 || size > available {
                    available
                } else {
                    size
                };
                let data_len = data_len - data_len % block_align as usize;
                return Some(Wav {
                    channels,
                    sample_rate,
                    bits_per_sample,
                    block_align,
                    data_offset: body,
                    data_len,
                });
            }
            pos = body.checked_add(size + (size & 1))?;
        }
        None
    }

    pub fn byte_rate(&self) -> usize {
        self.sample_rate as usize * self.block_align as usize
    }

    /// The length in seconds.
    pub fn duration(&self) -> f64 {
        self.data_len as f64 / self.byte_rate() as f64
    }

    /// A 44-byte header for `data_len` bytes of samples in this layout.
    pub fn header(&self, data_len: usize) -> Vec<u8> {
        wav_header(
            self.channels,
            self.sample_rate,
            self.bits_per_sample,
            data_len,
        )
    }
}

/// The canonical 44-byte PCM WAV header.
pub fn wav_header(channels: u16, sample_rate: u32, bits: u16, data_len: usize) -> Vec<u8> {
    let block_align = channels * bits.div_ceil(8);
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_len as u32).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&sample_rate.to_le_bytes());
    h.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&(data_len as u32).to_le_bytes());
    h
}

/// One piece of a split recording: its WAV bytes and where it starts and ends, in seconds.
#[derive(Debug, Clone)]
pub struct Window {
    pub audio: Vec<u8>,
    pub start: f64,
    pub end: f64,
}

/// Cuts a PCM WAV file into WAV files of whole seconds, each at most `max_bytes` long
/// (header included). `None` when one second of audio alone is larger than that.
pub fn split_wav(file: &[u8], wav: &Wav, max_bytes: usize) -> Option<Vec<Window>> {
    let rate = wav.byte_rate();
    let seconds = max_bytes.saturating_sub(44) / rate;
    if seconds == 0 {
        return None;
    }
    let window = seconds * rate;
    let data = &file[wav.data_offset..wav.data_offset + wav.data_len];
    Some(
        data.chunks(window)
            .enumerate()
            .map(|(i, chunk)| {
                let mut audio = wav.header(chunk.len());
                audio.extend_from_slice(chunk);
                let start = (i * window) as f64 / rate as f64;
                Window {
                    audio,
                    start,
                    end: start + chunk.len() as f64 / rate as f64,
                }
            })
            .collect(),
    )
}

/// One timed piece of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// `HH:MM:SS` + `sep` + milliseconds.
fn timestamp(seconds: f64, sep: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// SubRip subtitles, one cue per segment.
pub fn srt(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(s.start, ','),
            timestamp(s.end, ','),
            s.text.trim()
        ));
    }
    out
}

/// WebVTT subtitles, one cue per segment.
pub fn vtt(segments: &[Segment]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for s in segments {
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            timestamp(s.start, '.'),
            timestamp(s.end, '.'),
            s.text.trim()
        ));
    }
    out
}

/// The transcript as OpenAI's `verbose_json`.
pub fn verbose_json(
    task: &str,
    language: Option<&str>,
    duration: f64,
    text: &str,
    segments: &[Segment],
) -> Value {
    json!({
        "task": task,
        "language": language.unwrap_or("unknown"),
        "duration": duration,
        "text": text,
        "segments": segments.iter().enumerate().map(|(id, s)| json!({
            "id": id,
            "seek": 0,
            "start": s.start,
            "end": s.end,
            "text": s.text,
            "tokens": [],
            "temperature": 0.0,
            "avg_logprob": 0.0,
            "compression_ratio": 0.0,
            "no_speech_prob": 0.0,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
        let b = "XyZbound";
        let mut body = Vec::new();
        for (name, filename, data) in parts {
            body.extend_from_slice(format!("--{b}\r\n").as_bytes());
            match filename {
                Some(f) => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: audio/x-wav\r\n\r\n").as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={b}"), body)
    }

    fn tone(seconds: u32, rate: u32) -> Vec<u8> {
        let n = (seconds * rate) as usize;
        let mut w = wav_header(1, rate, 16, n * 2);
        for i in 0..n {
            w.extend_from_slice(&(((i % 50) as i16) * 100).to_le_bytes());
        }
        w
    }

    #[test]
    fn multipart_form_is_read() {
        let audio = tone(1, 8000);
        let (ct, body) = form(&[
            ("model", None, b"whisper"),
            ("file", Some("a.wav"), &audio),
            ("response_format", None, b"srt"),
            ("temperature", None, b"0.2"),
            ("language", None, b"fr"),
        ]);
        let r = TranscriptionRequest::parse(Some(&ct), &body).unwrap();
        assert_eq!(r.model, "whisper");
        assert_eq!(r.file, &audio[..]);
        assert_eq!(r.filename.as_deref(), Some("a.wav"));
        assert_eq!(r.content_type, "audio/wav");
        assert_eq!(r.response_format, TranscriptFormat::Srt);
        assert_eq!(r.temperature, Some(0.2));
        assert_eq!(r.language.as_deref(), Some("fr"));
        assert_eq!(multipart_model(&ct, &body).as_deref(), Some("whisper"));

        let (ct, body) = form(&[("model", None, b"w"), ("file", Some("a.mp3"), b"ID3...")]);
        let r = TranscriptionRequest::parse(Some(&ct), &body).unwrap();
        assert_eq!(
            r.content_type, "audio/x-wav",
            "the part's audio type is kept"
        );

        let (ct, body) = form(&[("file", Some("a.wav"), &audio)]);
        let e = TranscriptionRequest::parse(Some(&ct), &body).unwrap_err();
        assert_eq!(e.body()["error"]["param"], "model");
        let (ct, body) = form(&[
            ("model", None, b"w"),
            ("file", Some("a.wav"), &audio),
            ("response_format", None, b"xml"),
        ]);
        let e = TranscriptionRequest::parse(Some(&ct), &body).unwrap_err();
        assert!(
            e.to_string().contains("json, text, srt, vtt, verbose_json"),
            "{e}"
        );
        assert!(TranscriptionRequest::parse(Some("application/json"), b"{}").is_err());
        assert!(parse_multipart(
            b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nunclosed",
            "b"
        )
        .is_err());
    }

    #[test]
    fn wav_is_measured_and_split_by_whole_seconds() {
        let audio = tone(10, 8000);
        let wav = Wav::parse(&audio).unwrap();
        assert_eq!(wav.duration(), 10.0);
        assert_eq!(wav.byte_rate(), 16000);
        // 3 s of audio (48,000 bytes) plus a header fit in 50,000 bytes.
        let windows = split_wav(&audio, &wav, 50_000).unwrap();
        assert_eq!(windows.len(), 4);
        assert!(windows.iter().all(|w| w.audio.len() <= 50_000));
        assert_eq!((windows[1].start, windows[1].end), (3.0, 6.0));
        assert_eq!((windows[3].start, windows[3].end), (9.0, 10.0));
        let last = Wav::parse(&windows[3].audio).unwrap();
        assert_eq!(last.duration(), 1.0);
        let joined: Vec<u8> = windows
            .iter()
            .flat_map(|w| w.audio[44..].to_vec())
            .collect();
        assert_eq!(joined, audio[44..]);
        assert!(split_wav(&audio, &wav, 1000).is_none());
        assert!(Wav::parse(b"ID3\x03not a wav").is_none());
    }

    #[test]
    fn subtitles() {
        let s = [Segment {
            start: 0.0,
            end: 3723.5,
            text: " hello ".into(),
        }];
        assert_eq!(srt(&s), "1\n00:00:00,000 --> 01:02:03,500\nhello\n\n");
        assert_eq!(
            vtt(&s),
            "WEBVTT\n\n00:00:00.000 --> 01:02:03.500\nhello\n\n"
        );
    }

    #[test]
    fn speech_request_is_checked() {
        let r =
            SpeechRequest::parse(br#"{"model":"tts","input":"hi","voice":"alloy","speed":1.5}"#)
                .unwrap();
        assert_eq!(
            (
                r.model.as_str(),
                r.voice.as_deref(),
                r.speed,
                r.response_format
            ),
            ("tts", Some("alloy"), Some(1.5), None)
        );
        for (body, param) in [
            (r#"{"model":"tts"}"#, "input"),
            (r#"{"model":"tts","input":"hi","speed":9}"#, "speed"),
            (
                r#"{"model":"tts","input":"hi","response_format":"ogg"}"#,
                "response_format",
            ),
        ] {
            let e = SpeechRequest::parse(body.as_bytes()).unwrap_err();
            assert_eq!(e.body()["error"]["param"], param, "{body}");
        }
    }
}
