//! Local stand-ins for the calendar providers, served over real HTTP on
//! loopback. Tests, replays and the demo run against them; they answer with
//! the providers' own paths, JSON and error shapes.

pub mod control;
mod faults;
pub mod google;
pub mod microsoft;
pub mod record;

pub use faults::{Endpoint, Fault, TokenFault};
pub use google::{AccountSpec, GoogleEmulator, StoredEvent};
pub use microsoft::{MicrosoftEmulator, MsAccountSpec};
pub use record::{Exchange, Recorder};

use axum::Router;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// Serves `router` on a free loopback port until `shutdown` fires.
pub async fn serve_local(
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok(addr)
}

/// RFC 7636 S256: base64url(sha256(verifier)), unpadded.
pub(crate) fn pkce_s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// `base64(id:secret)` as HTTP Basic sends it. Both values are URL-encoded
/// first, as RFC 6749 §2.3.1 asks and the `oauth2` crate does.
pub(crate) fn base64_basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
}

/// An unsigned stand-in for an OpenID `id_token` with these claims: the
/// emulators cannot sign as Google or Microsoft, and callbook reads the
/// claims of a token it got straight from the token endpoint.
pub(crate) fn unsigned_jwt(claims: &serde_json::Value) -> String {
    use base64::Engine;
    let enc = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "emulated"});
    format!("{}.{}.emulated-signature", enc(&header), enc(claims))
}

/// The consent screens' account chooser. Like Google's and Microsoft's,
/// they pre-select the account `login_hint` names (or the first account),
/// and the person at the browser may pick another: a test adds
/// `choose_account=<address>` to the authorize URL to sign in as that
/// account instead, as someone signed in to another account would.
pub const CHOOSE_ACCOUNT: &str = "choose_account";

/// The account a consent screen signs in as: the one chosen
/// ([`CHOOSE_ACCOUNT`]), else the one `login_hint` names, else the first.
/// `None` when the chosen or hinted account does not exist.
pub(super) fn pick_account<'a>(
    q: &std::collections::HashMap<String, String>,
    emails: impl Iterator<Item = &'a str>,
) -> Option<usize> {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let (chosen, hint) = (get(CHOOSE_ACCOUNT), get("login_hint"));
    let want = if chosen.is_empty() { hint } else { chosen };
    let mut emails = emails;
    emails.position(|e| want.is_empty() || e.eq_ignore_ascii_case(want))
}

/// An authorization code waiting for its exchange.
#[derive(Debug)]
pub(super) struct PendingCode {
    pub account: usize,
    pub challenge: String,
    pub redirect_uri: String,
}

/// The consent screen approving at once: remembers `code` for `account`
/// with the request's PKCE challenge and redirect URI, and sends the
/// browser back to `back` with the code, the state and the `echo`ed
/// request parameters.
pub(super) fn approve(
    codes: &mut std::collections::HashMap<String, PendingCode>,
    code: String,
    account: usize,
    q: &std::collections::HashMap<String, String>,
    mut back: reqwest::Url,
    echo: &[&str],
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    {
        let mut pairs = back.query_pairs_mut();
        pairs
            .append_pair("code", &code)
            .append_pair("state", &get("state"));
        for k in echo {
            pairs.append_pair(k, &get(k));
        }
    }
    codes.insert(
        code,
        PendingCode {
            account,
            challenge: get("code_challenge"),
            redirect_uri: get("redirect_uri"),
        },
    );
    (
        axum::http::StatusCode::FOUND,
        [(axum::http::header::LOCATION, back.to_string())],
    )
        .into_response()
}
