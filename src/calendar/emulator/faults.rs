//! Faults both emulators can be told to produce, per account and per
//! endpoint, each the way the real service produces it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use std::time::Duration;

/// An endpoint a fault can be injected into. The names are the product's
/// operations; each emulator maps its own paths onto them (Microsoft's
/// `calendarView` is `FreeBusy`, its `POST …/events` is `Insert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    CalendarList,
    /// Microsoft's mailbox settings (the owner's zone).
    MailboxSettings,
    FreeBusy,
    Insert,
    /// One event, by id.
    Get,
    /// A calendar's events in a window (Google's `events.list`, Graph's
    /// `/events` with a filter).
    List,
    Patch,
    Delete,
}

/// A token endpoint's refusal, as the identity provider sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFault {
    /// The grant is revoked or expired (`invalid_grant`; Microsoft adds
    /// AADSTS70008).
    InvalidGrant,
    /// The app lacks consent (Microsoft: `invalid_grant` with AADSTS65001
    /// and `suberror: consent_required`; Google: `consent_required`).
    ConsentRequired,
    /// MFA or Conditional Access wants the owner back (`interaction_required`).
    InteractionRequired,
    /// The identity provider is briefly down (`temporarily_unavailable`).
    TemporarilyUnavailable,
}

/// A fault, as the real service produces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer late.
    Latency(Duration),
    /// Answer with this status and the provider's error body (`reason` is
    /// Google's `reason` or Graph's `code`), with `Retry-After` when given.
    Status {
        code: u16,
        reason: &'static str,
        retry_after: Option<u64>,
    },
    /// Do the work, then answer too late for the client (it times out).
    CommitThenDrop,
    /// Google: a 200 from freeBusy whose calendar entry carries this error.
    CalendarError(&'static str),
    /// A token endpoint refusal.
    Token(TokenFault),
}

#[derive(Debug)]
struct Injected {
    email: String,
    endpoint: Endpoint,
    fault: Fault,
    remaining: u32,
    /// Fires only until then, when set.
    until: Option<tokio::time::Instant>,
}

/// The faults waiting to fire.
#[derive(Debug, Default)]
pub(super) struct Faults {
    list: Vec<Injected>,
}

impl Faults {
    pub(super) fn inject(&mut self, email: &str, endpoint: Endpoint, fault: Fault, times: u32) {
        self.list.push(Injected {
            email: email.to_string(),
            endpoint,
            fault,
            remaining: times,
            until: None,
        });
    }

    /// A fault on every request to `endpoint` for the next `window`: an
    /// outage of that endpoint.
    pub(super) fn inject_for(
        &mut self,
        email: &str,
        endpoint: Endpoint,
        fault: Fault,
        window: Duration,
    ) {
        self.list.push(Injected {
            email: email.to_string(),
            endpoint,
            fault,
            remaining: u32::MAX,
            until: Some(tokio::time::Instant::now() + window),
        });
    }

    pub(super) fn clear(&mut self) {
        self.list.clear();
    }

    /// The next fault for this account and endpoint, used up by one.
    pub(super) fn take(&mut self, email: &str, endpoint: Endpoint) -> Option<Fault> {
        let now = tokio::time::Instant::now();
        self.list
            .retain(|f| f.remaining > 0 && f.until.is_none_or(|until| until > now));
        let hit = self
            .list
            .iter_mut()
            .find(|f| f.email == email && f.endpoint == endpoint)?;
        hit.remaining -= 1;
        Some(hit.fault.clone())
    }
}

/// What a handler does after consulting the injected faults.
pub(super) enum Before {
    Go {
        drop_after: bool,
        calendar_error: Option<&'static str>,
    },
    Respond(Response),
}

impl Before {
    /// Answers for the handler, or runs it and, for commit-then-drop, holds
    /// its answer back past the client's timeout.
    pub(super) async fn run(
        self,
        handler: impl std::future::Future<Output = Response>,
    ) -> Response {
        match self {
            Before::Respond(r) => r,
            Before::Go { drop_after, .. } => {
                let resp = handler.await;
                if drop_after {
                    tokio::time::sleep(DROP_DELAY).await;
                }
                resp
            }
        }
    }
}

/// How long a "dropped" answer is held back: past any client timeout.
pub(super) const DROP_DELAY: Duration = Duration::from_secs(10);

/// How each provider writes its errors.
pub(super) trait ErrorShape {
    /// An API error with this status and reason/code.
    fn api_error(status: StatusCode, reason: &str) -> Response;
    /// A token endpoint refusal.
    fn token_error(fault: TokenFault) -> Response;
}

/// Applies a fault taken for this request: sleeps, or answers in the
/// provider's shape, or tells the handler what to do.
pub(super) async fn apply<S: ErrorShape>(fault: Option<Fault>) -> Before {
    let go = Before::Go {
        drop_after: false,
        calendar_error: None,
    };
    match fault {
        None => go,
        Some(Fault::Latency(d)) => {
            tokio::time::sleep(d).await;
            go
        }
        Some(Fault::CommitThenDrop) => Before::Go {
            drop_after: true,
            calendar_error: None,
        },
        Some(Fault::CalendarError(reason)) => Before::Go {
            drop_after: false,
            calendar_error: Some(reason),
        },
        Some(Fault::Token(t)) => Before::Respond(S::token_error(t)),
        Some(Fault::Status {
            code,
            reason,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = S::api_error(status, reason);
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Before::Respond(resp)
        }
    }
}
