//! OAuth over the `oauth2` crate: the authorization URL (PKCE S256 and a
//! single-use `state`), the code exchange with a check of the granted
//! scopes, refresh, and revoke; provider errors classified.

use super::CalendarError;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Where and as whom to refresh.
#[derive(Clone)]
pub struct OAuthClient {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// A fresh access token. Providers that rotate refresh tokens return the new
/// one here; it must replace the stored one.
pub struct Grant {
    pub access_token: SecretString,
    pub expires_in: Duration,
    pub refresh_token: Option<SecretString>,
    /// What the owner actually granted, when the provider says.
    pub scopes: Option<Vec<String>>,
}

/// Google's narrow scopes: free/busy, events, the calendar list, identity.
pub const GOOGLE_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/calendar.freebusy",
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    "openid",
    "email",
];

/// Microsoft's scopes (v2.0 `common` endpoints).
pub const MICROSOFT_SCOPES: &[&str] = &[
    "offline_access",
    "openid",
    "email",
    "User.Read",
    "Calendars.ReadWrite",
    "MailboxSettings.Read",
];

/// How to send an owner to a provider's consent screen.
#[derive(Clone, Debug)]
pub struct ConsentSpec {
    pub authorize_url: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// Provider-specific parameters (Google: offline access, forced
    /// consent, incremental grants).
    pub extra: Vec<(String, String)>,
    /// Scopes that must come back granted (calendar access; identity
    /// scopes come back under other names).
    pub required: Vec<String>,
}

impl ConsentSpec {
    pub fn google(authorize_url: &str, redirect_uri: &str) -> Self {
        let scopes: Vec<String> = GOOGLE_SCOPES.iter().map(|s| s.to_string()).collect();
        Self {
            authorize_url: authorize_url.into(),
            redirect_uri: redirect_uri.into(),
            required: scopes
                .iter()
                .filter(|s| s.contains("/auth/calendar"))
                .cloned()
                .collect(),
            scopes,
            extra: vec![
                ("access_type".into(), "offline".into()),
                ("prompt".into(), "consent".into()),
                ("include_granted_scopes".into(), "true".into()),
            ],
        }
    }

    pub fn microsoft(authorize_url: &str, redirect_uri: &str) -> Self {
        Self {
            authorize_url: authorize_url.into(),
            redirect_uri: redirect_uri.into(),
            scopes: MICROSOFT_SCOPES.iter().map(|s| s.to_string()).collect(),
            required: vec!["Calendars.ReadWrite".into(), "MailboxSettings.Read".into()],
            extra: vec![("response_mode".into(), "query".into())],
        }
    }
}

/// The browser redirect, and the verifier to keep until the callback.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub verifier: SecretString,
}

/// Consent flows waiting for their callback, by `state`. Each state works
/// once and expires.
#[derive(Default)]
pub struct PendingFlows {
    flows: Mutex<HashMap<String, (SecretString, tokio::time::Instant)>>,
}

/// How long an owner has to finish the consent screen.
pub const FLOW_TTL: Duration = Duration::from_secs(600);

impl PendingFlows {
    pub fn put(&self, a: &Authorization) {
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        let now = tokio::time::Instant::now();
        flows.retain(|_, (_, at)| now.duration_since(*at) < FLOW_TTL);
        flows.insert(a.state.clone(), (a.verifier.clone(), now));
    }

    /// The verifier for `state`, once; `None` for an unknown, used or
    /// expired state.
    pub fn take(&self, state: &str) -> Option<SecretString> {
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        let (verifier, at) = flows.remove(state)?;
        (at.elapsed() < FLOW_TTL).then_some(verifier)
    }
}

/// Lifetime assumed when a token response gives none.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

impl OAuthClient {
    /// Exchanges a refresh token for an access token.
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        refresh_token: &SecretString,
    ) -> Result<Grant, CalendarError> {
        let token_url = TokenUrl::new(self.token_url.clone())
            .map_err(|e| CalendarError::Rejected(e.to_string()))?;
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.client_secret.expose_secret().to_string(),
            ))
            .set_token_uri(token_url);
        let rt = RefreshToken::new(refresh_token.expose_secret().to_string());
        let response = client.exchange_refresh_token(&rt).request_async(http).await;
        match response {
            Ok(token) => Ok(grant_of(&token)),
            Err(RequestTokenError::ServerResponse(e)) => Err(classify(e.error())),
            Err(RequestTokenError::Request(e)) => {
                Err(CalendarError::Transient(format!("token endpoint: {e}")))
            }
            Err(other) => Err(CalendarError::Transient(format!("token endpoint: {other}"))),
        }
    }
}

fn grant_of(token: &oauth2::basic::BasicTokenResponse) -> Grant {
    Grant {
        access_token: SecretString::from(token.access_token().secret().clone()),
        expires_in: token.expires_in().unwrap_or(DEFAULT_TOKEN_LIFETIME),
        refresh_token: token
            .refresh_token()
            .map(|r| SecretString::from(r.secret().clone())),
        scopes: token
            .scopes()
            .map(|s| s.iter().map(|x| x.to_string()).collect()),
    }
}

impl OAuthClient {
    /// The consent URL, with PKCE S256 and a fresh random `state`.
    pub fn authorize(&self, spec: &ConsentSpec) -> Result<Authorization, CalendarError> {
        let bad =
            |e: oauth2::url::ParseError| CalendarError::Rejected(format!("OAuth endpoint: {e}"));
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(AuthUrl::new(spec.authorize_url.clone()).map_err(bad)?)
            .set_redirect_uri(RedirectUrl::new(spec.redirect_uri.clone()).map_err(bad)?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(spec.scopes.iter().map(|s| Scope::new(s.clone())))
            .set_pkce_challenge(challenge);
        for (k, v) in &spec.extra {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        let (url, state) = req.url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            verifier: SecretString::from(verifier.secret().clone()),
        })
    }

    /// Exchanges the callback's code for tokens, and checks that the owner
    /// granted every scope callbook needs.
    pub async fn exchange(
        &self,
        http: &reqwest::Client,
        spec: &ConsentSpec,
        code: &str,
        verifier: SecretString,
    ) -> Result<Grant, CalendarError> {
        let token_url = TokenUrl::new(self.token_url.clone())
            .map_err(|e| CalendarError::Rejected(e.to_string()))?;
        let redirect = RedirectUrl::new(spec.redirect_uri.clone())
            .map_err(|e| CalendarError::Rejected(e.to_string()))?;
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.client_secret.expose_secret().to_string(),
            ))
            .set_token_uri(token_url)
            .set_redirect_uri(redirect);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_string()))
            .request_async(http)
            .await;
        let grant = match response {
            Ok(token) => grant_of(&token),
            Err(RequestTokenError::ServerResponse(e)) => return Err(classify(e.error())),
            Err(other) => return Err(CalendarError::Transient(format!("token endpoint: {other}"))),
        };
        if let Some(granted) = &grant.scopes {
            let missing: Vec<String> = spec
                .required
                .iter()
                .filter(|s| !granted.contains(s))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(CalendarError::ScopeMissing(missing));
            }
        }
        Ok(grant)
    }

    /// Revokes a token where the provider has an endpoint for it (Google).
    pub async fn revoke(
        http: &reqwest::Client,
        revoke_url: &str,
        token: &SecretString,
    ) -> Result<(), CalendarError> {
        let resp = http
            .post(revoke_url)
            .form(&[("token", token.expose_secret())])
            .send()
            .await
            .map_err(|e| CalendarError::Transient(e.without_url().to_string()))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            // Already revoked or expired: the goal is reached.
            400 => Ok(()),
            s => Err(CalendarError::Transient(format!("revoke answered {s}"))),
        }
    }
}

/// Maps an OAuth error code to what the product does about it.
fn classify(code: &BasicErrorResponseType) -> CalendarError {
    match code {
        BasicErrorResponseType::InvalidGrant => CalendarError::Expired,
        BasicErrorResponseType::Extension(x) if x == "interaction_required" => {
            CalendarError::Expired
        }
        BasicErrorResponseType::Extension(x) if x == "consent_required" => {
            CalendarError::ConsentRequired
        }
        BasicErrorResponseType::Extension(x) if x == "temporarily_unavailable" => {
            CalendarError::Transient("token endpoint temporarily unavailable".into())
        }
        other => CalendarError::Rejected(format!("token endpoint: {other}")),
    }
}

/// Called with each new refresh token: Microsoft rotates them on every
/// refresh and the old one must be replaced where it is stored.
pub type OnRotate = std::sync::Arc<dyn Fn(SecretString) + Send + Sync>;

/// Refresh this long before an access token runs out.
const TOKEN_EARLY_REFRESH: Duration = Duration::from_secs(60);

struct Tokens {
    refresh: SecretString,
    access: Option<(SecretString, tokio::time::Instant)>,
}

/// An HTTP client acting for one connected account: it caches the access
/// token until shortly before it expires, keeps one refresh in flight (a
/// tokio mutex held across it), hands rotated refresh tokens to `on_rotate`,
/// and answers a 401 with one refresh and one retry. Both provider clients
/// send through it. No `Debug`: it holds tokens.
pub struct AuthorizedClient {
    http: reqwest::Client,
    oauth: OAuthClient,
    tokens: tokio::sync::Mutex<Tokens>,
    on_rotate: Option<OnRotate>,
}

impl AuthorizedClient {
    pub fn new(
        http: reqwest::Client,
        oauth: OAuthClient,
        refresh_token: SecretString,
        on_rotate: Option<OnRotate>,
    ) -> Self {
        Self {
            http,
            oauth,
            tokens: tokio::sync::Mutex::new(Tokens {
                refresh: refresh_token,
                access: None,
            }),
            on_rotate,
        }
    }

    async fn access_token(&self, force: bool) -> Result<SecretString, CalendarError> {
        let mut tokens = self.tokens.lock().await;
        if let (false, Some((token, until))) = (force, tokens.access.as_ref()) {
            if tokio::time::Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let grant = self.oauth.refresh(&self.http, &tokens.refresh).await?;
        if let Some(rotated) = grant.refresh_token {
            tokens.refresh = rotated.clone();
            if let Some(persist) = &self.on_rotate {
                persist(rotated);
            }
        }
        let until =
            tokio::time::Instant::now() + grant.expires_in.saturating_sub(TOKEN_EARLY_REFRESH);
        tokens.access = Some((grant.access_token.clone(), until));
        Ok(grant.access_token)
    }

    /// Sends the request `build` makes with a bearer token. A 401 gets one
    /// token refresh and one retry; any other answer is returned as is.
    pub(crate) async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<super::Answer, CalendarError> {
        let mut refreshed = false;
        loop {
            let token = self.access_token(refreshed).await?;
            let answer =
                super::Answer::of(build(&self.http).bearer_auth(token.expose_secret())).await?;
            if answer.status == reqwest::StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                continue;
            }
            return Ok(answer);
        }
    }
}
