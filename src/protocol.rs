//! Protocol v1 frames, both directions. `protocol/README.md` documents them
//! and `protocol/schema.json` describes them; a test keeps the three in step.
//!
//! Inbound frames are Twilio Media Streams frames exactly as Twilio sends them,
//! plus three extensions from the pipeline (`transcript`, `booking`, `sync`).
//! Parsing is two-step: a cheap look at `event` first, so `media` frames (50 a
//! second) are counted without their payload ever being decoded.

use crate::dialog::Status;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;

/// The protocol version this build speaks, announced in the first frame.
pub const VERSION: &str = "1.1.0";

/// Largest inbound text frame accepted, in bytes. Twilio frames are ~330 B.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Longest transcript text accepted, in bytes.
pub const MAX_TRANSCRIPT_BYTES: usize = 4 * 1024;

/// A frame from the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Connected,
    Start(Start),
    /// Audio; only counted.
    Media,
    Dtmf {
        digit: String,
    },
    Mark {
        name: String,
    },
    Stop,
    Transcript(Transcript),
    Booking(BookingAction),
    Sync {
        id: String,
    },
}

/// The `start` frame's metadata.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    #[serde(default)]
    pub account_sid: String,
    pub stream_sid: String,
    pub call_sid: String,
    #[serde(default)]
    pub custom_parameters: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Transcript {
    pub text: String,
    #[serde(rename = "final")]
    pub is_final: bool,
    #[serde(default)]
    pub confidence: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingAction {
    Offer,
    Cancel,
}

/// Why an inbound frame was refused. The call goes on after each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame is not valid JSON: {0}")]
    Malformed(String),
    #[error("frame has no \"event\" field")]
    MissingEvent,
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    #[error("invalid {event} frame: {detail}")]
    Invalid { event: &'static str, detail: String },
    #[error("frame is larger than {MAX_FRAME_BYTES} bytes")]
    TooLarge,
    #[error("binary frames are not part of the protocol")]
    Binary,
    #[error("{0} before start")]
    NotStarted(&'static str),
    #[error("start was already received")]
    AlreadyStarted,
}

impl ProtocolError {
    /// The stable `code` in the outbound `error` frame.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::Malformed(_) => "malformed_json",
            ProtocolError::MissingEvent => "missing_event",
            ProtocolError::UnknownEvent(_) => "unknown_event",
            ProtocolError::Invalid { .. } => "invalid_frame",
            ProtocolError::TooLarge => "frame_too_large",
            ProtocolError::Binary => "binary_frame",
            ProtocolError::NotStarted(_) => "not_started",
            ProtocolError::AlreadyStarted => "already_started",
        }
    }
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StartFrame {
    start: Start,
}

#[derive(Deserialize)]
struct DtmfFrame {
    dtmf: DtmfBody,
}

#[derive(Deserialize)]
struct DtmfBody {
    digit: String,
}

#[derive(Deserialize)]
struct MarkFrame {
    mark: MarkBody,
}

#[derive(Deserialize)]
struct MarkBody {
    name: String,
}

#[derive(Deserialize)]
struct TranscriptFrame {
    transcript: Transcript,
}

#[derive(Deserialize)]
struct BookingFrame {
    booking: BookingBody,
}

#[derive(Deserialize)]
struct BookingBody {
    action: BookingAction,
}

#[derive(Deserialize)]
struct SyncFrame {
    sync: SyncBody,
}

#[derive(Deserialize)]
struct SyncBody {
    #[serde(deserialize_with = "string_or_number")]
    id: String,
}

/// Twilio sends counters as strings; look-alike carriers send numbers.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        N(serde_json::Number),
    }
    match Either::deserialize(d) {
        Ok(Either::S(s)) => Ok(s),
        Ok(Either::N(n)) => Ok(n.to_string()),
        Err(_) => Err(de::Error::custom("expected a string or a number")),
    }
}

fn body<'a, T: Deserialize<'a>>(event: &'static str, text: &'a str) -> Result<T, ProtocolError> {
    serde_json::from_str(text).map_err(|e| ProtocolError::Invalid {
        event,
        detail: e.to_string(),
    })
}

/// Parses one inbound text frame.
pub fn parse(text: &str) -> Result<Inbound, ProtocolError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge);
    }
    let probe: Probe =
        serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    let event = probe.event.ok_or(ProtocolError::MissingEvent)?;
    Ok(match event.as_ref() {
        "media" => Inbound::Media,
        "connected" => Inbound::Connected,
        "start" => Inbound::Start(body::<StartFrame>("start", text)?.start),
        "dtmf" => Inbound::Dtmf {
            digit: body::<DtmfFrame>("dtmf", text)?.dtmf.digit,
        },
        "mark" => Inbound::Mark {
            name: body::<MarkFrame>("mark", text)?.mark.name,
        },
        "stop" => Inbound::Stop,
        "transcript" => {
            let t = body::<TranscriptFrame>("transcript", text)?.transcript;
            if t.text.len() > MAX_TRANSCRIPT_BYTES {
                return Err(ProtocolError::Invalid {
                    event: "transcript",
                    detail: format!("text longer than {MAX_TRANSCRIPT_BYTES} bytes"),
                });
            }
            Inbound::Transcript(t)
        }
        "booking" => Inbound::Booking(body::<BookingFrame>("booking", text)?.booking.action),
        "sync" => Inbound::Sync {
            id: body::<SyncFrame>("sync", text)?.sync.id,
        },
        other => {
            return Err(ProtocolError::UnknownEvent(
                other.chars().take(64).collect(),
            ))
        }
    })
}

/// A frame to the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Outbound {
    /// First frame on every socket: how the client learns the version.
    Connected {
        protocol: &'static str,
        version: &'static str,
    },
    Say {
        #[serde(rename = "streamSid", skip_serializing_if = "Option::is_none")]
        stream_sid: Option<String>,
        say: Say,
    },
    Booking {
        #[serde(rename = "streamSid", skip_serializing_if = "Option::is_none")]
        stream_sid: Option<String>,
        booking: Status,
    },
    Error {
        #[serde(rename = "streamSid", skip_serializing_if = "Option::is_none")]
        stream_sid: Option<String>,
        error: ErrorBody,
    },
    Sync {
        sync: SyncReply,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Say {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReply {
    pub id: String,
}

impl Outbound {
    pub fn hello() -> Self {
        Outbound::Connected {
            protocol: "callbook",
            version: VERSION,
        }
    }

    pub fn error(stream_sid: Option<String>, e: &ProtocolError) -> Self {
        Outbound::Error {
            stream_sid,
            error: ErrorBody {
                code: e.code(),
                message: e.to_string(),
            },
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: no maps with non-string keys.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"event\":\"error\"}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_twilio_frames_with_string_counters() {
        let start = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"campaign_id":"demo"}},"streamSid":"MZ1"}"#;
        match parse(start).unwrap() {
            Inbound::Start(s) => {
                assert_eq!(s.call_sid, "CA1");
                assert_eq!(s.custom_parameters["campaign_id"], "demo");
            }
            other => panic!("{other:?}"),
        }
        let media = r#"{"event":"media","sequenceNumber":4,"media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"////"},"streamSid":"MZ1"}"#;
        assert_eq!(parse(media).unwrap(), Inbound::Media);
    }

    #[test]
    fn bad_frames_get_named_errors() {
        assert_eq!(parse("{not json").unwrap_err().code(), "malformed_json");
        assert_eq!(parse("{}").unwrap_err().code(), "missing_event");
        assert_eq!(
            parse(r#"{"event":"dance"}"#).unwrap_err().code(),
            "unknown_event"
        );
        assert_eq!(
            parse(r#"{"event":"transcript","transcript":{}}"#)
                .unwrap_err()
                .code(),
            "invalid_frame"
        );
        assert_eq!(parse(r#"[1,2]"#).unwrap_err().code(), "malformed_json");
    }

    #[test]
    fn sync_ids_may_be_numbers() {
        assert_eq!(
            parse(r#"{"event":"sync","sync":{"id":7}}"#).unwrap(),
            Inbound::Sync { id: "7".into() }
        );
    }
}
