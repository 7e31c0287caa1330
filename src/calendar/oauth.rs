//! OAuth over the `oauth2` crate: the authorization URL (PKCE S256 and a
//! single-use `state`), the code exchange with a check of the granted
//! scopes, refresh, and revoke; provider errors classified.

use super::CalendarError;
use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse,
    TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// A token endpoint's error body. Google sends `error` and
/// `error_description`; Microsoft adds the AADSTS numbers in `error_codes`
/// and sometimes a `suberror`. Classification reads the codes, never the
/// description text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suberror: Option<String>,
}

impl std::fmt::Display for TokenErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)?;
        for code in &self.error_codes {
            write!(f, " AADSTS{code}")?;
        }
        if let Some(sub) = &self.suberror {
            write!(f, " ({sub})")?;
        }
        Ok(())
    }
}

impl oauth2::ErrorResponse for TokenErrorBody {}

/// The one extra field callbook reads from a token response: the OpenID
/// `id_token`, for the account's tenant and address.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type TokenAnswer = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// The `oauth2` client, typed with callbook's error body and token fields.
type Client<HasAuthUrl, HasTokenUrl> = oauth2::Client<
    TokenErrorBody,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    HasAuthUrl,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    HasTokenUrl,
>;

/// Who granted access, from the `id_token` of the token response.
///
/// The token is read, not verified: it arrives straight from the provider's
/// token endpoint over TLS (exchanged with callbook's client secret and the
/// flow's PKCE verifier), which OpenID Connect Core §3.1.3.7 accepts in
/// place of checking its signature. Besides display and the
/// personal-account check, it decides whether a connect was finished by the
/// account it was started for ([`super::binding`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Microsoft's tenant (`tid`).
    pub tenant: Option<String>,
    /// The account's address (`email`, else `preferred_username`).
    pub email: Option<String>,
    /// Microsoft's sign-in name (`preferred_username`).
    pub username: Option<String>,
    /// Google's `email_verified`: whether Google checked the address.
    pub email_verified: Option<bool>,
}

/// The tenant every personal Microsoft account (outlook.com, hotmail.com)
/// signs in through.
pub const MICROSOFT_PERSONAL_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

impl Identity {
    /// Reads the claims of an unverified JWT; `None` when it is not one.
    pub fn from_id_token(jwt: &str) -> Option<Identity> {
        use base64::Engine;
        let payload = jwt.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        #[derive(Deserialize)]
        struct Claims {
            tid: Option<String>,
            email: Option<String>,
            preferred_username: Option<String>,
            email_verified: Option<serde_json::Value>,
        }
        let c: Claims = serde_json::from_slice(&bytes).ok()?;
        // Google has sent `email_verified` both as a boolean and a string.
        let email_verified = match c.email_verified {
            Some(serde_json::Value::Bool(b)) => Some(b),
            Some(serde_json::Value::String(s)) => Some(s == "true"),
            _ => None,
        };
        Some(Identity {
            tenant: c.tid,
            email: c.email.or(c.preferred_username.clone()),
            username: c.preferred_username,
            email_verified,
        })
    }

    /// A personal Microsoft account: no Teams, no `getSchedule`.
    pub fn is_microsoft_personal(&self) -> bool {
        self.tenant.as_deref() == Some(MICROSOFT_PERSONAL_TENANT)
    }
}

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
    /// Who granted it, when the response carries an `id_token`.
    pub identity: Option<Identity>,
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

    /// Asks the provider to pre-select this account on its sign-in screen
    /// (`login_hint`, which Google and Microsoft both read). The owner may
    /// still pick another; the callback checks which one they did.
    pub fn with_login_hint(mut self, account: Option<&str>) -> Self {
        if let Some(a) = account {
            self.extra.push(("login_hint".into(), a.to_string()));
        }
        self
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

/// Consent flows waiting for their callback, by `state`, each with what the
/// caller needs to finish it (`T`: whose connection, which provider). Each
/// state works once and expires.
pub struct PendingFlows<T = ()> {
    flows: Mutex<HashMap<String, Pending<T>>>,
}

struct Pending<T> {
    verifier: SecretString,
    meta: T,
    at: tokio::time::Instant,
}

impl<T> Default for PendingFlows<T> {
    fn default() -> Self {
        Self {
            flows: Mutex::new(HashMap::new()),
        }
    }
}

/// How long an owner has to finish the consent screen.
pub const FLOW_TTL: Duration = Duration::from_secs(600);

impl<T> PendingFlows<T> {
    pub fn put(&self, a: &Authorization, meta: T) {
        self.put_state(&a.state, a.verifier.clone(), meta);
    }

    pub fn put_state(&self, state: &str, verifier: SecretString, meta: T) {
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        let now = tokio::time::Instant::now();
        flows.retain(|_, p| now.duration_since(p.at) < FLOW_TTL);
        flows.insert(
            state.to_string(),
            Pending {
                verifier,
                meta,
                at: now,
            },
        );
    }

    /// The verifier and meta for `state`, once; `None` for an unknown, used
    /// or expired state.
    pub fn take(&self, state: &str) -> Option<(SecretString, T)> {
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        let p = flows.remove(state)?;
        (p.at.elapsed() < FLOW_TTL).then_some((p.verifier, p.meta))
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
        let client = self.token_client(token_url);
        let rt = RefreshToken::new(refresh_token.expose_secret().to_string());
        let response = client.exchange_refresh_token(&rt).request_async(http).await;
        match response {
            Ok(token) => Ok(grant_of(&token)),
            Err(e) => Err(token_failure(e)),
        }
    }

    fn token_client(&self, token_url: TokenUrl) -> Client<EndpointNotSet, EndpointSet> {
        Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.client_secret.expose_secret().to_string(),
            ))
            .set_token_uri(token_url)
    }
}

/// What a failed token request means for the product.
fn token_failure<E: std::error::Error + 'static>(
    e: RequestTokenError<E, TokenErrorBody>,
) -> CalendarError {
    match e {
        RequestTokenError::ServerResponse(body) => classify(&body),
        // No answer, or one that is not an OAuth body (a proxy's 502 page).
        other => CalendarError::Transient(format!("token endpoint: {other}")),
    }
}

fn grant_of(token: &TokenAnswer) -> Grant {
    Grant {
        access_token: SecretString::from(token.access_token().secret().clone()),
        expires_in: token.expires_in().unwrap_or(DEFAULT_TOKEN_LIFETIME),
        refresh_token: token
            .refresh_token()
            .map(|r| SecretString::from(r.secret().clone())),
        scopes: token
            .scopes()
            .map(|s| s.iter().map(|x| x.to_string()).collect()),
        identity: token
            .extra_fields()
            .id_token
            .as_deref()
            .and_then(Identity::from_id_token),
    }
}

impl OAuthClient {
    /// The consent URL, with PKCE S256 and a fresh random `state`.
    pub fn authorize(&self, spec: &ConsentSpec) -> Result<Authorization, CalendarError> {
        let bad =
            |e: oauth2::url::ParseError| CalendarError::Rejected(format!("OAuth endpoint: {e}"));
        let client: Client<EndpointSet, EndpointNotSet> =
            Client::new(ClientId::new(self.client_id.clone()))
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
        let client = self.token_client(token_url).set_redirect_uri(redirect);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_string()))
            .request_async(http)
            .await;
        let grant = match response {
            Ok(token) => grant_of(&token),
            Err(e) => return Err(token_failure(e)),
        };
        if let Some(granted) = &grant.scopes {
            let granted: Vec<&str> = granted.iter().map(|s| bare_scope(s)).collect();
            let missing: Vec<String> = spec
                .required
                .iter()
                .filter(|s| !granted.contains(&bare_scope(s)))
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

/// A scope without Graph's resource prefix: Microsoft reports
/// `Calendars.ReadWrite` as `https://graph.microsoft.com/Calendars.ReadWrite`.
fn bare_scope(scope: &str) -> &str {
    scope
        .strip_prefix("https://graph.microsoft.com/")
        .unwrap_or(scope)
}

/// AADSTS codes that mean the grant is gone and the owner must reconnect:
/// revoked or expired grant (70008), inactive token (700082), a single-page
/// app's 24-hour limit (700084), sign-in frequency (70043), fresh token
/// needed after a password reset (50173).
const EXPIRED_CODES: &[u32] = &[70008, 700082, 700084, 70043, 50173];

/// AADSTS codes that mean the app lacks consent: not consented (65001), and
/// the tenant requiring an administrator (90094, 90095).
const CONSENT_CODES: &[u32] = &[65001, 90094, 90095];

/// Maps a token endpoint's error to what the product does about it.
pub fn classify(body: &TokenErrorBody) -> CalendarError {
    let consent = body.suberror.as_deref() == Some("consent_required")
        || body.error_codes.iter().any(|c| CONSENT_CODES.contains(c));
    match body.error.as_str() {
        // Google: a Workspace administrator restricts the app's scopes.
        "consent_required" | "admin_policy_enforced" => CalendarError::ConsentRequired,
        "invalid_grant" | "interaction_required" if consent => CalendarError::ConsentRequired,
        "invalid_grant" | "interaction_required" => {
            if !body.error_codes.is_empty()
                && !body.error_codes.iter().any(|c| EXPIRED_CODES.contains(c))
            {
                // An unlisted code still means the grant does not work; say
                // which, for whoever reads the log.
                tracing::info!(error = %body, "token refused with an unlisted code");
            }
            CalendarError::Expired
        }
        "temporarily_unavailable" => {
            CalendarError::Transient("token endpoint temporarily unavailable".into())
        }
        _ => CalendarError::Rejected(format!("token endpoint: {body}")),
    }
}

/// Where a Microsoft tenant's administrator approves callbook for everyone
/// in it, for when the tenant does not let users consent themselves.
/// Microsoft sends the administrator back to `redirect_uri` with
/// `admin_consent=True&tenant=…` (or `error=…`), without a `state`.
pub fn admin_consent_url(
    authority: &str,
    tenant: &str,
    client_id: &str,
    redirect_uri: &str,
) -> Option<String> {
    let mut url = reqwest::Url::parse(authority).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend([tenant, "v2.0", "adminconsent"]);
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("scope", "https://graph.microsoft.com/.default")
        .append_pair("redirect_uri", redirect_uri);
    Some(url.to_string())
}

/// Called with each new refresh token: Microsoft rotates them on every
/// refresh and the old one must be replaced where it is stored. It is
/// awaited before the new access token is used, with the next refresh held
/// back, so rotations are stored in order.
pub type OnRotate = std::sync::Arc<
    dyn Fn(SecretString) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync,
>;

/// Reads the refresh token stored now, which another instance may have
/// rotated or an owner may have replaced by reconnecting.
pub type ReloadToken = std::sync::Arc<
    dyn Fn() -> futures_util::future::BoxFuture<'static, Option<SecretString>> + Send + Sync,
>;

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
    reload: Option<ReloadToken>,
    /// The provider's name for the refresh metrics.
    provider: &'static str,
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
            reload: None,
            provider: "unknown",
        }
    }

    /// Names the provider in the token-refresh metrics.
    pub fn for_provider(mut self, provider: &'static str) -> Self {
        self.provider = provider;
        self
    }

    /// One refresh, counted (and its failure's class).
    async fn refresh(&self, token: &SecretString) -> Result<Grant, CalendarError> {
        let r = self.oauth.refresh(&self.http, token).await;
        let failure = r
            .as_ref()
            .err()
            .map(crate::observe::metrics::calendar_fault);
        crate::observe::metrics::token_refresh(self.provider, failure);
        r
    }

    /// Before each refresh, and once more when a refresh is refused, takes
    /// the stored refresh token: with several instances sharing a store,
    /// another may have rotated it (Microsoft) or the owner reconnected.
    pub fn with_reload(mut self, reload: ReloadToken) -> Self {
        self.reload = Some(reload);
        self
    }

    async fn access_token(&self, force: bool) -> Result<SecretString, CalendarError> {
        let mut tokens = self.tokens.lock().await;
        if let (false, Some((token, until))) = (force, tokens.access.as_ref()) {
            if tokio::time::Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        if let Some(stored) = self.stored().await {
            tokens.refresh = stored;
        }
        let grant = match self.refresh(&tokens.refresh).await {
            Err(CalendarError::Expired) => {
                // Refused: unless the stored token moved on meanwhile (a
                // rotation elsewhere), the grant is really gone.
                let used = tokens.refresh.expose_secret().to_string();
                match self.stored().await {
                    Some(stored) if stored.expose_secret() != used => {
                        tokens.refresh = stored;
                        self.refresh(&tokens.refresh).await?
                    }
                    _ => return Err(CalendarError::Expired),
                }
            }
            other => other?,
        };
        if let Some(rotated) = grant.refresh_token {
            tokens.refresh = rotated.clone();
            if let Some(persist) = &self.on_rotate {
                persist(rotated).await;
            }
        }
        let until =
            tokio::time::Instant::now() + grant.expires_in.saturating_sub(TOKEN_EARLY_REFRESH);
        tokens.access = Some((grant.access_token.clone(), until));
        Ok(grant.access_token)
    }

    async fn stored(&self) -> Option<SecretString> {
        match &self.reload {
            Some(reload) => reload().await,
            None => None,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> TokenErrorBody {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn token_errors_are_classified_by_code_never_by_text() {
        let cases = [
            // Google
            (
                r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
                CalendarError::Expired,
            ),
            // Microsoft: the listed expiry codes
            (
                r#"{"error":"invalid_grant","error_codes":[70008]}"#,
                CalendarError::Expired,
            ),
            (
                r#"{"error":"invalid_grant","error_codes":[700082]}"#,
                CalendarError::Expired,
            ),
            (
                r#"{"error":"invalid_grant","error_codes":[700084]}"#,
                CalendarError::Expired,
            ),
            (
                r#"{"error":"invalid_grant","error_codes":[70043]}"#,
                CalendarError::Expired,
            ),
            (
                r#"{"error":"invalid_grant","error_codes":[50173]}"#,
                CalendarError::Expired,
            ),
            (
                r#"{"error":"interaction_required","error_codes":[50076]}"#,
                CalendarError::Expired,
            ),
            // Consent: at refresh it arrives as invalid_grant
            (
                r#"{"error":"invalid_grant","error_codes":[65001],"suberror":"consent_required"}"#,
                CalendarError::ConsentRequired,
            ),
            (
                r#"{"error":"invalid_grant","error_codes":[65001]}"#,
                CalendarError::ConsentRequired,
            ),
            (
                r#"{"error":"interaction_required","error_codes":[90094]}"#,
                CalendarError::ConsentRequired,
            ),
            (
                r#"{"error":"consent_required"}"#,
                CalendarError::ConsentRequired,
            ),
            (
                r#"{"error":"admin_policy_enforced"}"#,
                CalendarError::ConsentRequired,
            ),
            // A description that mentions consent does not make it consent.
            (
                r#"{"error":"invalid_grant","error_description":"AADSTS65001: consent","error_codes":[70008]}"#,
                CalendarError::Expired,
            ),
            (
                r#"{"error":"temporarily_unavailable"}"#,
                CalendarError::Transient("token endpoint temporarily unavailable".into()),
            ),
        ];
        for (json, want) in cases {
            assert_eq!(classify(&body(json)), want, "{json}");
        }
        assert!(matches!(
            classify(&body(
                r#"{"error":"invalid_client","error_codes":[7000215]}"#
            )),
            CalendarError::Rejected(_)
        ));
    }

    #[test]
    fn the_admin_consent_url_names_the_tenant_and_graph_default_scope() {
        let url = admin_consent_url(
            "https://login.microsoftonline.com",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "app-1",
            "https://callbook.example/v1/oauth/callback",
        )
        .unwrap();
        assert_eq!(
            url,
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0/adminconsent\
             ?client_id=app-1&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default\
             &redirect_uri=https%3A%2F%2Fcallbook.example%2Fv1%2Foauth%2Fcallback"
        );
    }

    #[test]
    fn identity_is_read_from_the_id_token_claims() {
        use base64::Engine;
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let jwt = format!(
            "{}.{}.sig",
            enc(r#"{"alg":"RS256"}"#),
            enc(&format!(
                r#"{{"tid":"{MICROSOFT_PERSONAL_TENANT}","preferred_username":"a@outlook.com"}}"#
            ))
        );
        let id = Identity::from_id_token(&jwt).unwrap();
        assert!(id.is_microsoft_personal());
        assert_eq!(id.email.as_deref(), Some("a@outlook.com"));
        assert_eq!(id.username.as_deref(), Some("a@outlook.com"));
        assert_eq!(id.email_verified, None);
        // Google's verified address, whether the flag is a boolean or text.
        for verified in ["true", "\"true\""] {
            let jwt = format!(
                "{}.{}.sig",
                enc(r#"{"alg":"RS256"}"#),
                enc(&format!(
                    r#"{{"email":"a@gmail.com","email_verified":{verified}}}"#
                ))
            );
            let id = Identity::from_id_token(&jwt).unwrap();
            assert_eq!(id.email_verified, Some(true), "{verified}");
            assert_eq!(id.username, None);
        }
        assert_eq!(Identity::from_id_token("not a jwt"), None);
        assert_eq!(Identity::from_id_token("a.!!!.c"), None);
    }
}
