//! Protocol v1 frames, both directions. `protocol/README.md` documents them
//! and `protocol/schema.json` describes them; a test keeps the three in step.
//!
//! Inbound frames are Twilio Media Streams frames exactly as Twilio sends them,
//! plus three extensions from the pipeline (`transcript`, `booking`, `sync`).
//! Parsing is two-step: a cheap look at `event` first, so `media` frames (50 a
//! second) are counted without their payload ever being decoded.

use crate::domain::Status;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;

/// The protocol version this build speaks, announced in the first frame.
pub const VERSION: &str = "1.5.0";

/// Largest inbound text frame accepted, in bytes. Twilio frames are ~330 B.
/// A larger frame gets an `error` frame and the call goes on.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The transport's own limit: a frame over this is not even read, and the
/// socket is closed with 1009. Well above [`MAX_FRAME_BYTES`] so that an
/// oversized but bounded frame gets the documented error instead.
pub const TRANSPORT_MAX_BYTES: usize = 1024 * 1024;

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
    /// Playback of the say named here (and every earlier one) finished.
    Mark {
        name: String,
    },
    /// The pipeline cut callbook's audio (barge-in).
    Clear(Clear),
    /// What the pipeline can report (`capabilities` frame).
    Capabilities(Capabilities),
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
    /// What the TwiML author wrote into `<Parameter>`s. Any JSON scalar is
    /// read as its text; `null` as absent.
    #[serde(default, deserialize_with = "scalar_map")]
    pub custom_parameters: HashMap<String, String>,
}

impl Start {
    /// A custom parameter, trimmed; blank counts as absent.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.custom_parameters
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Whether the `start` itself declares playback reports.
    pub fn declares_playback(&self) -> bool {
        self.param("callbook_playback") == Some("marks")
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Transcript {
    /// Echoed in the `turn` answer.
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub id: Option<String>,
    pub text: String,
    #[serde(rename = "final")]
    pub is_final: bool,
    #[serde(default)]
    pub confidence: Option<f64>,
}

/// A barge-in report. Twilio's own `clear` has no body; callbook's
/// extension may say which say was cut and how much of it was spoken.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Clear {
    #[serde(default)]
    pub say: Option<String>,
    #[serde(default)]
    pub spoken_chars: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Capabilities {
    /// `"marks"`: the pipeline reports playback with `mark` and `clear`.
    #[serde(default)]
    pub playback: Option<String>,
}

impl Capabilities {
    pub fn playback_marks(&self) -> bool {
        self.playback.as_deref() == Some("marks")
    }
}

/// What the pipeline asks of the booking conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookingAction {
    Offer(OfferRequest),
    Cancel,
}

/// `booking` `offer` and what the agent already knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct OfferRequest {
    /// The caller already agreed to a meeting: skip the question.
    #[serde(default)]
    pub agreed: bool,
    /// An address the agent already has, to read back rather than ask.
    #[serde(default)]
    pub email: Option<String>,
    /// The caller's preferred time, as they said it.
    #[serde(default)]
    pub when: Option<String>,
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
    #[error("no start within {0} seconds of the upgrade")]
    StartTimeout(u64),
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
            ProtocolError::StartTimeout(_) => "start_timeout",
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
#[serde(rename_all = "snake_case")]
enum ActionName {
    Offer,
    Cancel,
}

#[derive(Deserialize)]
struct BookingBody {
    action: ActionName,
    #[serde(flatten)]
    offer: OfferRequest,
}

#[derive(Deserialize)]
struct ClearFrame {
    #[serde(default)]
    clear: Option<Clear>,
}

#[derive(Deserialize)]
struct CapabilitiesFrame {
    capabilities: Capabilities,
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

fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "string_or_number")] String);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

/// `customParameters` as Twilio passes them: whatever the TwiML author
/// wrote, so numbers, booleans and `null` as well as strings.
fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<HashMap<String, String>, D::Error> {
    let raw = Option::<HashMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    let mut out = HashMap::with_capacity(raw.len());
    for (k, v) in raw {
        let text = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return Err(de::Error::custom(format!(
                    "customParameters.{k} must be a string, number, boolean or null"
                )))
            }
        };
        out.insert(k, text);
    }
    Ok(out)
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
        "clear" => Inbound::Clear(body::<ClearFrame>("clear", text)?.clear.unwrap_or_default()),
        "capabilities" => {
            Inbound::Capabilities(body::<CapabilitiesFrame>("capabilities", text)?.capabilities)
        }
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
        "booking" => {
            let b = body::<BookingFrame>("booking", text)?.booking;
            Inbound::Booking(match b.action {
                ActionName::Offer => BookingAction::Offer(b.offer),
                ActionName::Cancel => BookingAction::Cancel,
            })
        }
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
    /// Who answers the final transcript with this id.
    Turn {
        #[serde(rename = "streamSid", skip_serializing_if = "Option::is_none")]
        stream_sid: Option<String>,
        turn: TurnReply,
    },
    Say {
        #[serde(rename = "streamSid", skip_serializing_if = "Option::is_none")]
        stream_sid: Option<String>,
        say: Say,
    },
    /// This `start` continued an earlier socket's call.
    Resumed {
        #[serde(rename = "streamSid", skip_serializing_if = "Option::is_none")]
        stream_sid: Option<String>,
        resumed: Resumed,
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

/// Who takes a turn: callbook (the agent stays silent) or the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    Callbook,
    Agent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TurnReply {
    /// The transcript's id, `null` when it had none.
    pub id: Option<String>,
    pub owner: Owner,
    /// Whether callbook holds the floor after this turn.
    pub floor: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resumed {
    #[serde(rename = "callSid")]
    pub call_sid: String,
    pub floor: bool,
    /// The id of the last say before the socket dropped.
    pub last_say: Option<String>,
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
