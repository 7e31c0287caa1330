//! Refresh tokens at rest: sealed with ChaCha20-Poly1305 under a key from the
//! environment, bound to their owner so a sealed token cannot be moved to
//! another user.
//!
//! Format: `v1:<key id>:<base64 nonce>:<base64 ciphertext+tag>`, with the
//! associated data `<user>|<provider>|<key id>`. Each seal draws a fresh
//! random 96-bit nonce.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("token key: expected 32 bytes of base64")]
    BadKey,
    #[error("sealed token: not in the v1 format")]
    Malformed,
    #[error("sealed token: sealed under key {0:?}, which is not configured")]
    UnknownKey(String),
    #[error("sealed token: does not open (wrong key, wrong owner, or tampered)")]
    DoesNotOpen,
}

/// The key that seals and opens refresh tokens. No `Debug`: it is a key.
pub struct TokenCipher {
    kid: String,
    cipher: ChaCha20Poly1305,
}

fn aad(owner: &str, kid: &str) -> String {
    format!("{owner}|{kid}")
}

impl TokenCipher {
    /// A cipher from a base64 32-byte key and its id.
    pub fn from_base64(kid: &str, key: &SecretString) -> Result<Self, SecretsError> {
        let bytes = B64
            .decode(key.expose_secret().trim())
            .map_err(|_| SecretsError::BadKey)?;
        let cipher = ChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SecretsError::BadKey)?;
        Ok(Self {
            kid: kid.to_string(),
            cipher,
        })
    }

    /// Seals `token` for `owner` (`<user>|<provider>`).
    pub fn seal(&self, token: &SecretString, owner: &str) -> String {
        let nonce = Nonce::generate();
        let aad = aad(owner, &self.kid);
        let payload = Payload {
            msg: token.expose_secret().as_bytes(),
            aad: aad.as_bytes(),
        };
        // Encryption with a valid key and in-memory buffers cannot fail.
        let sealed = self.cipher.encrypt(&nonce, payload).unwrap_or_default();
        format!(
            "v1:{}:{}:{}",
            self.kid,
            B64.encode(nonce.as_slice()),
            B64.encode(sealed)
        )
    }

    /// Opens a sealed token for `owner`.
    pub fn open(&self, sealed: &str, owner: &str) -> Result<SecretString, SecretsError> {
        let mut parts = sealed.trim().splitn(4, ':');
        let (Some("v1"), Some(kid), Some(nonce), Some(body)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SecretsError::Malformed);
        };
        if kid != self.kid {
            return Err(SecretsError::UnknownKey(kid.to_string()));
        }
        let nonce_bytes = B64.decode(nonce).map_err(|_| SecretsError::Malformed)?;
        let nonce = Nonce::try_from(nonce_bytes.as_slice()).map_err(|_| SecretsError::Malformed)?;
        let body = B64.decode(body).map_err(|_| SecretsError::Malformed)?;
        let aad = aad(owner, kid);
        let plain = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &body,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::DoesNotOpen)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SecretsError::DoesNotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(kid: &str, byte: u8) -> TokenCipher {
        TokenCipher::from_base64(kid, &SecretString::from(B64.encode([byte; 32]))).unwrap()
    }

    #[test]
    fn a_sealed_token_opens_for_its_owner_only() {
        let c = cipher("k1", 7);
        let token = SecretString::from("1//refresh-token");
        let sealed = c.seal(&token, "alex|google");
        assert!(!sealed.contains("refresh-token"));
        assert_eq!(
            c.open(&sealed, "alex|google").unwrap().expose_secret(),
            "1//refresh-token"
        );
        assert_eq!(
            c.open(&sealed, "mallory|google").err(),
            Some(SecretsError::DoesNotOpen)
        );
        // Fresh nonce every time.
        assert_ne!(sealed, c.seal(&token, "alex|google"));
    }

    #[test]
    fn tampering_truncation_and_other_keys_are_refused() {
        let c = cipher("k1", 7);
        let sealed = c.seal(&SecretString::from("t"), "alex|google");
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(c.open(&flipped, "alex|google").is_err());
        assert!(c.open(&sealed[..sealed.len() - 6], "alex|google").is_err());
        assert_eq!(
            cipher("k1", 8).open(&sealed, "alex|google").err(),
            Some(SecretsError::DoesNotOpen)
        );
        assert_eq!(
            cipher("k2", 7).open(&sealed, "alex|google").err(),
            Some(SecretsError::UnknownKey("k1".into()))
        );
        assert_eq!(
            c.open("plaintext", "alex|google").err(),
            Some(SecretsError::Malformed)
        );
        assert!(TokenCipher::from_base64("k", &SecretString::from("c2hvcnQ=")).is_err());
    }
}
