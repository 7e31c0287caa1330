//! Settings links, sessions and CSRF tokens, signed with HMAC-SHA256 under
//! a key derived from the admin token (so every instance sharing the
//! admin token accepts what another signed, and changing the admin token
//! ends every link and session).
//!
//! - A **link** names one user and expires ([`LINK_TTL`] by default);
//!   opening it once starts a session, and the same link is refused
//!   afterwards on every instance: its nonce is recorded in the store
//!   (Redis, when instances share one) until the link expires.
//! - A **session** (an `HttpOnly`, `SameSite=Strict` cookie scoped to
//!   `/settings`) names the user and expires after [`SESSION_TTL`]; every
//!   settings request acts for that user only, never for a user the request
//!   names.
//! - A session's **CSRF token** is an HMAC of the session's nonce: a page
//!   gets it in a `<meta>` and sends it back in `X-CSRF-Token` with every
//!   change; a change without it is refused.
//!
//! Each signed value is `base64url(claims JSON).base64url(tag)`, the tag
//! taken over a purpose label and the claims, so a link is no session and
//! a session no link.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How long a settings link stays valid unless the request asks otherwise:
/// long enough to click it from the host product, short enough that one
/// found later in a log or a history is dead.
pub const LINK_TTL: i64 = 10 * 60;
/// The shortest and longest lifetime a link may be asked for.
pub const LINK_TTL_RANGE: std::ops::RangeInclusive<i64> = 60..=60 * 60;
/// How long a settings session lasts once its link was opened.
pub const SESSION_TTL: i64 = 60 * 60;
/// Longest signed value read: anything longer is refused unread.
const MAX_TOKEN_LEN: usize = 2048;

/// What a signed value is for; part of what the tag covers.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    Link,
    Session,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Link => b"callbook settings link",
            Purpose::Session => b"callbook settings session",
        }
    }
}

/// Whom a link or session is for, until when (Unix seconds), and a random
/// nonce that makes each one unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub user: String,
    pub exp: i64,
    pub nonce: String,
}

impl Claims {
    pub fn new(user: &str, exp: i64) -> Self {
        Self {
            user: user.to_string(),
            exp,
            nonce: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

/// Why a signed value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not one this server signed for this purpose (or altered since).
    Invalid,
    /// Signed, but past its time.
    Expired,
}

/// Signs and checks links, sessions and CSRF tokens. Which links were
/// opened is the store's to remember ([`crate::store::Store::first_use`]),
/// so that every instance agrees.
pub struct Signer {
    /// `None` while no admin token is configured: no links then.
    key: Option<[u8; 32]>,
}

impl Signer {
    /// The signing key is HMAC(admin token, a fixed label): one secret to
    /// configure, and the admin token itself never signs anything.
    pub fn new(admin_token: Option<&SecretString>) -> Self {
        let key = admin_token.and_then(|t| {
            let mut mac = HmacSha256::new_from_slice(t.expose_secret().as_bytes()).ok()?;
            mac.update(b"callbook settings signing key v1");
            Some(mac.finalize().into_bytes().into())
        });
        Self { key }
    }

    fn mac(&self, label: &[u8], data: &[u8]) -> Option<HmacSha256> {
        let mut mac = HmacSha256::new_from_slice(self.key.as_ref()?).ok()?;
        mac.update(label);
        mac.update(b"|");
        mac.update(data);
        Some(mac)
    }

    /// `claims` signed for `purpose`; `None` without a key.
    pub fn sign(&self, purpose: Purpose, claims: &Claims) -> Option<String> {
        let body = B64.encode(serde_json::to_vec(claims).ok()?);
        let tag = self.mac(purpose.label(), body.as_bytes())?.finalize();
        Some(format!("{body}.{}", B64.encode(tag.into_bytes())))
    }

    /// The claims of `token` if this server signed it for `purpose` and it
    /// has not expired at `now` (Unix seconds).
    pub fn open(&self, purpose: Purpose, token: &str, now: i64) -> Result<Claims, Refused> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Refused::Invalid);
        }
        let (body, tag) = token.split_once('.').ok_or(Refused::Invalid)?;
        let tag = B64.decode(tag).map_err(|_| Refused::Invalid)?;
        self.mac(purpose.label(), body.as_bytes())
            .ok_or(Refused::Invalid)?
            .verify_slice(&tag)
            .map_err(|_| Refused::Invalid)?;
        let json = B64.decode(body).map_err(|_| Refused::Invalid)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| Refused::Invalid)?;
        if claims.exp <= now {
            return Err(Refused::Expired);
        }
        Ok(claims)
    }

    /// The CSRF token of a session.
    pub fn csrf(&self, session: &Claims) -> Option<String> {
        let data = format!("{}|{}", session.user, session.nonce);
        let tag = self.mac(b"callbook settings csrf", data.as_bytes())?;
        Some(B64.encode(tag.finalize().into_bytes()))
    }

    /// Whether `given` is the session's CSRF token (compared in constant
    /// time).
    pub fn csrf_matches(&self, session: &Claims, given: &str) -> bool {
        let Ok(given) = B64.decode(given) else {
            return false;
        };
        let data = format!("{}|{}", session.user, session.nonce);
        self.mac(b"callbook settings csrf", data.as_bytes())
            .is_some_and(|m| m.verify_slice(&given).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(Some(&SecretString::from("admin-token-0123456789")))
    }

    #[test]
    fn a_signed_link_opens_until_it_expires() {
        let s = signer();
        let link = Claims::new("alex", 1_000);
        let token = s.sign(Purpose::Link, &link).unwrap();
        assert_eq!(s.open(Purpose::Link, &token, 999), Ok(link));
        assert_eq!(s.open(Purpose::Link, &token, 1_000), Err(Refused::Expired));
    }

    #[test]
    fn a_link_is_not_a_session_and_an_altered_one_is_refused() {
        let s = signer();
        let token = s.sign(Purpose::Link, &Claims::new("alex", 1_000)).unwrap();
        assert_eq!(s.open(Purpose::Session, &token, 0), Err(Refused::Invalid));
        // The same tag over claims naming another user.
        let (_, tag) = token.split_once('.').unwrap();
        let other = B64.encode(serde_json::to_vec(&Claims::new("sam", 1_000)).unwrap());
        let forged = format!("{other}.{tag}");
        assert_eq!(s.open(Purpose::Link, &forged, 0), Err(Refused::Invalid));
        // Signed under another admin token.
        let elsewhere = Signer::new(Some(&SecretString::from("another-admin-token-42")));
        assert_eq!(
            elsewhere.open(Purpose::Link, &token, 0),
            Err(Refused::Invalid)
        );
        for junk in ["", ".", "a.b", "x", &"a".repeat(5000)] {
            assert_eq!(
                s.open(Purpose::Link, junk, 0),
                Err(Refused::Invalid),
                "{junk:.20}"
            );
        }
    }

    #[test]
    fn without_an_admin_token_nothing_is_signed_or_opened() {
        let s = Signer::new(None);
        let claims = Claims::new("alex", 1_000);
        assert!(s.sign(Purpose::Link, &claims).is_none());
        let token = signer().sign(Purpose::Link, &claims).unwrap();
        assert_eq!(s.open(Purpose::Link, &token, 0), Err(Refused::Invalid));
        assert!(!s.csrf_matches(&claims, "anything"));
    }

    #[test]
    fn the_csrf_token_belongs_to_one_session() {
        let s = signer();
        let a = Claims::new("alex", 1_000);
        let b = Claims::new("alex", 1_000);
        let token = s.csrf(&a).unwrap();
        assert!(s.csrf_matches(&a, &token));
        assert!(!s.csrf_matches(&b, &token));
        assert!(!s.csrf_matches(&a, ""));
        assert!(!s.csrf_matches(&a, "not base64!"));
    }
}
