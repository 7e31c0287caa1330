//! Binding a connect to the account it was started for.
//!
//! A connect's `authorize_url` carries a single-use `state`: whoever opens
//! it within [`super::oauth::FLOW_TTL`] finishes the connect, with whatever
//! account their browser signs in as. Unchecked, a leaked link lets anyone
//! attach *their* calendar to the user, and the user's bookings then land
//! on it. So a connect records the account it expects ([`ExpectedAccount`]),
//! the provider is asked to pre-select it (`login_hint`), and the callback
//! compares the `id_token`'s account (and, for Microsoft, tenant) with it
//! ([`check`]): another account is refused and nothing is stored, unless
//! the administrator chose `allow_other_account` when starting the connect,
//! in which case the connection is flagged.
//!
//! Which claim names the account:
//! - Google: `email`, only when `email_verified` is true.
//! - Microsoft: `preferred_username`, the sign-in name. Its `email` claim
//!   is not verified by Microsoft (any tenant administrator can set it to
//!   any address), so it never decides. Where the tenant is known (given
//!   at connect start, or the one the user's current connection is in),
//!   `tid` must match too.

use super::oauth::Identity;
use crate::store::Provider;
use serde::{Deserialize, Serialize};

/// Whom a consent flow is for. Kept with the flow until its callback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedAccount {
    /// The account's sign-in address (sent as `login_hint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Microsoft's tenant (`tid`) the account must be in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Accept whichever account finishes the consent (flagged on the
    /// connection).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_other: bool,
}

/// How the account that finished a consent differs from the expected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// Another account signed in.
    Account,
    /// The account is in another Microsoft tenant.
    Tenant,
    /// The provider's answer does not say who signed in (no `id_token`, an
    /// unverified Google address), or the flow expected no one.
    Unverifiable,
}

impl Mismatch {
    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mismatch::Account => "account",
            Mismatch::Tenant => "tenant",
            Mismatch::Unverifiable => "unverifiable",
        }
    }
}

/// What the callback does with the account that finished a consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The expected account: store the connection.
    Matched,
    /// Another account, and the connect allowed that: store it, flagged.
    OtherAllowed(Mismatch),
    /// Another account: store nothing.
    Refused(Mismatch),
}

/// The account name callbook trusts from an identity, per provider.
pub fn trusted_account(provider: Provider, identity: &Identity) -> Option<&str> {
    match provider {
        Provider::Google => identity
            .email
            .as_deref()
            .filter(|_| identity.email_verified == Some(true)),
        Provider::Microsoft => identity.username.as_deref(),
    }
}

fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Compares who finished a consent with whom the connect expected.
pub fn check(provider: Provider, expect: &ExpectedAccount, identity: &Identity) -> Verdict {
    let mismatch = mismatch(provider, expect, identity);
    match (mismatch, expect.allow_other) {
        (None, _) => Verdict::Matched,
        (Some(m), true) => Verdict::OtherAllowed(m),
        (Some(m), false) => Verdict::Refused(m),
    }
}

fn mismatch(provider: Provider, expect: &ExpectedAccount, identity: &Identity) -> Option<Mismatch> {
    let tenant = expect
        .tenant
        .as_deref()
        .filter(|_| provider == Provider::Microsoft);
    if expect.account.is_none() && tenant.is_none() {
        return Some(Mismatch::Unverifiable);
    }
    if let Some(want) = &expect.account {
        match trusted_account(provider, identity) {
            None => return Some(Mismatch::Unverifiable),
            Some(got) if !same(got, want) => return Some(Mismatch::Account),
            Some(_) => {}
        }
    }
    if let Some(want) = tenant {
        match identity.tenant.as_deref() {
            None => return Some(Mismatch::Unverifiable),
            Some(got) if !same(got, want) => return Some(Mismatch::Tenant),
            Some(_) => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn google(email: &str, verified: Option<bool>) -> Identity {
        Identity {
            email: Some(email.into()),
            email_verified: verified,
            ..Identity::default()
        }
    }

    fn microsoft(username: &str, email: &str, tenant: &str) -> Identity {
        Identity {
            email: Some(email.into()),
            username: Some(username.into()),
            tenant: Some(tenant.into()),
            email_verified: None,
        }
    }

    fn expect(account: Option<&str>, tenant: Option<&str>, allow_other: bool) -> ExpectedAccount {
        ExpectedAccount {
            account: account.map(str::to_string),
            tenant: tenant.map(str::to_string),
            allow_other,
        }
    }

    #[test]
    fn google_accepts_the_expected_verified_address_only() {
        let e = expect(Some("Alex@Acme.example"), None, false);
        let g = Provider::Google;
        assert_eq!(
            check(g, &e, &google("alex@acme.example", Some(true))),
            Verdict::Matched
        );
        assert_eq!(
            check(g, &e, &google("mallory@evil.example", Some(true))),
            Verdict::Refused(Mismatch::Account)
        );
        assert_eq!(
            check(g, &e, &google("alex@acme.example", Some(false))),
            Verdict::Refused(Mismatch::Unverifiable)
        );
        assert_eq!(
            check(g, &e, &google("alex@acme.example", None)),
            Verdict::Refused(Mismatch::Unverifiable)
        );
        assert_eq!(
            check(g, &e, &Identity::default()),
            Verdict::Refused(Mismatch::Unverifiable)
        );
        // A tenant means nothing to Google.
        let e = expect(Some("alex@acme.example"), Some("t-1"), false);
        assert_eq!(
            check(g, &e, &google("alex@acme.example", Some(true))),
            Verdict::Matched
        );
    }

    #[test]
    fn microsoft_goes_by_sign_in_name_and_tenant_never_the_email_claim() {
        let m = Provider::Microsoft;
        let e = expect(Some("alex@contoso.example"), Some("t-work"), false);
        assert_eq!(
            check(
                m,
                &e,
                &microsoft("alex@contoso.example", "alex@contoso.example", "t-work")
            ),
            Verdict::Matched
        );
        // An administrator elsewhere set the victim's address as `email`.
        assert_eq!(
            check(
                m,
                &e,
                &microsoft("mallory@fabrikam.example", "alex@contoso.example", "t-work")
            ),
            Verdict::Refused(Mismatch::Account)
        );
        assert_eq!(
            check(
                m,
                &e,
                &microsoft("alex@contoso.example", "alex@contoso.example", "t-other")
            ),
            Verdict::Refused(Mismatch::Tenant)
        );
        // Without a known tenant, only the account is compared.
        let e = expect(Some("alex@contoso.example"), None, false);
        assert_eq!(
            check(
                m,
                &e,
                &microsoft("alex@contoso.example", "x@y.example", "t-other")
            ),
            Verdict::Matched
        );
    }

    #[test]
    fn another_account_passes_only_when_the_connect_allowed_it() {
        let e = expect(Some("alex@acme.example"), None, true);
        assert_eq!(
            check(
                Provider::Google,
                &e,
                &google("alex@acme.example", Some(true))
            ),
            Verdict::Matched
        );
        assert_eq!(
            check(
                Provider::Google,
                &e,
                &google("other@acme.example", Some(true))
            ),
            Verdict::OtherAllowed(Mismatch::Account)
        );
        // A flow that expected no one is never a match.
        assert_eq!(
            check(
                Provider::Google,
                &ExpectedAccount::default(),
                &google("alex@acme.example", Some(true))
            ),
            Verdict::Refused(Mismatch::Unverifiable)
        );
    }
}
