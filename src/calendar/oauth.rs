//! Token refresh over the `oauth2` crate, with provider errors classified.

use super::CalendarError;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{ClientId, ClientSecret, RefreshToken, RequestTokenError, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};
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
            Ok(token) => Ok(Grant {
                access_token: SecretString::from(token.access_token().secret().clone()),
                expires_in: token.expires_in().unwrap_or(DEFAULT_TOKEN_LIFETIME),
                refresh_token: token
                    .refresh_token()
                    .map(|r| SecretString::from(r.secret().clone())),
            }),
            Err(RequestTokenError::ServerResponse(e)) => Err(classify(e.error())),
            Err(RequestTokenError::Request(e)) => {
                Err(CalendarError::Transient(format!("token endpoint: {e}")))
            }
            Err(other) => Err(CalendarError::Transient(format!("token endpoint: {other}"))),
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
