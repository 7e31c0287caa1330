//! Refresh tokens at rest: sealed with ChaCha20-Poly1305 under keys from the
//! environment, bound to their owner so a sealed token cannot be moved to
//! another user.
//!
//! Format: `v2:<key id>:<base64 nonce>:<base64 ciphertext+tag>`, with the
//! associated data `<user>|<provider>|<key id>`. Each seal draws a fresh
//! random 96-bit nonce.
//!
//! The key id is the key's fingerprint ([`key_id`]), never a label an
//! operator picks: a value names the key that opens it, and two different
//! keys cannot share an id. Several keys may be configured for rotation:
//! the first seals, every one opens, and a value is opened by the key its id
//! names.
//!
//! Values from before fingerprints (`v1:<label>:…`, label `k1` by default)
//! still open: every configured key is tried, and the AEAD tag says which
//! one fits. `callbook rekey` re-seals them as `v2`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("token key: expected 32 bytes of base64")]
    BadKey,
    #[error("token keys: none given")]
    NoKey,
    #[error("token keys: key {0} is given twice")]
    DuplicateKey(String),
    #[error("sealed token: not in the v1 or v2 format")]
    Malformed,
    #[error("sealed token: sealed under key {0}, which is not configured")]
    UnknownKey(String),
    #[error("sealed token: does not open (wrong key, wrong owner, or tampered)")]
    DoesNotOpen,
}

/// What a key id is derived with: an HMAC of this label under the key, so
/// the id says nothing about the key but which one it is.
const KEY_ID_LABEL: &[u8] = b"callbook token key id v1";

/// Bytes of the HMAC kept as the key id (hex: twice as many characters).
const KEY_ID_BYTES: usize = 8;

/// The id of a 32-byte key: the first [`KEY_ID_BYTES`] of
/// HMAC-SHA256(key, [`KEY_ID_LABEL`]), in hex. Safe to log and to store
/// beside what the key seals.
pub fn key_id(key: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(KEY_ID_LABEL);
    hex::encode(&mac.finalize().into_bytes()[..KEY_ID_BYTES])
}

/// What a key check is bound to, and what it says.
const KEY_CHECK_OWNER: &str = "callbook|key-check";
const KEY_CHECK_TEXT: &str = "callbook token key check";

/// One key and its id. No `Debug`: it is a key.
struct Key {
    id: String,
    cipher: ChaCha20Poly1305,
}

/// The keys that seal and open refresh tokens: the first seals, every one
/// opens. No `Debug`: it holds keys.
pub struct TokenCipher {
    keys: Vec<Key>,
}

fn aad(owner: &str, kid: &str) -> String {
    format!("{owner}|{kid}")
}

/// A sealed value taken apart.
struct Parts<'a> {
    version: &'a str,
    kid: &'a str,
    nonce: Nonce,
    body: Vec<u8>,
}

fn parts(sealed: &str) -> Result<Parts<'_>, SecretsError> {
    let mut it = sealed.trim().splitn(4, ':');
    let (Some(version @ ("v1" | "v2")), Some(kid), Some(nonce), Some(body)) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(SecretsError::Malformed);
    };
    let nonce_bytes = B64.decode(nonce).map_err(|_| SecretsError::Malformed)?;
    let nonce = Nonce::try_from(nonce_bytes.as_slice()).map_err(|_| SecretsError::Malformed)?;
    let body = B64.decode(body).map_err(|_| SecretsError::Malformed)?;
    Ok(Parts {
        version,
        kid,
        nonce,
        body,
    })
}

impl Key {
    fn open(&self, p: &Parts<'_>, owner: &str) -> Option<SecretString> {
        let aad = aad(owner, p.kid);
        let plain = self
            .cipher
            .decrypt(
                &p.nonce,
                Payload {
                    msg: &p.body,
                    aad: aad.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok().map(SecretString::from)
    }
}

impl TokenCipher {
    /// One base64 32-byte key.
    pub fn from_base64(key: &SecretString) -> Result<Self, SecretsError> {
        let bytes = B64
            .decode(key.expose_secret().trim())
            .map_err(|_| SecretsError::BadKey)?;
        let cipher = ChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SecretsError::BadKey)?;
        Ok(Self {
            keys: vec![Key {
                id: key_id(&bytes),
                cipher,
            }],
        })
    }

    /// Several base64 keys, the sealing one first. Each must be a valid key
    /// and none may be given twice.
    pub fn from_base64_list(keys: &[SecretString]) -> Result<Self, SecretsError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let mut one = Self::from_base64(k)?.keys;
            let key = one.remove(0);
            if out.iter().any(|o: &Key| o.id == key.id) {
                return Err(SecretsError::DuplicateKey(key.id));
            }
            out.push(key);
        }
        if out.is_empty() {
            return Err(SecretsError::NoKey);
        }
        Ok(Self { keys: out })
    }

    /// The id of the key that seals.
    pub fn sealing_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Every key's id, the sealing one first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Seals `token` for `owner` (`<user>|<provider>`) under the first key.
    pub fn seal(&self, token: &SecretString, owner: &str) -> String {
        let key = &self.keys[0];
        let nonce = Nonce::generate();
        let aad = aad(owner, &key.id);
        let payload = Payload {
            msg: token.expose_secret().as_bytes(),
            aad: aad.as_bytes(),
        };
        // Encryption with a valid key and in-memory buffers cannot fail.
        let sealed = key.cipher.encrypt(&nonce, payload).unwrap_or_default();
        format!(
            "v2:{}:{}:{}",
            key.id,
            B64.encode(nonce.as_slice()),
            B64.encode(sealed)
        )
    }

    /// Opens a sealed token for `owner` with the key its id names (a `v1`
    /// value: with whichever key fits).
    pub fn open(&self, sealed: &str, owner: &str) -> Result<SecretString, SecretsError> {
        let p = parts(sealed)?;
        if p.version == "v1" {
            return self
                .keys
                .iter()
                .find_map(|k| k.open(&p, owner))
                .ok_or(SecretsError::DoesNotOpen);
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.id == p.kid)
            .ok_or_else(|| SecretsError::UnknownKey(p.kid.to_string()))?;
        key.open(&p, owner).ok_or(SecretsError::DoesNotOpen)
    }

    /// A sealed known value, kept beside what a store seals from its first
    /// start on: whether the keys open it tells, even in a store with no
    /// tokens yet, whether they are the store's keys.
    pub fn seal_key_check(&self) -> String {
        self.seal(&SecretString::from(KEY_CHECK_TEXT), KEY_CHECK_OWNER)
    }

    /// Whether the keys open a store's [`TokenCipher::seal_key_check`].
    pub fn open_key_check(&self, sealed: &str) -> Result<(), SecretsError> {
        let text = self.open(sealed, KEY_CHECK_OWNER)?;
        if text.expose_secret() == KEY_CHECK_TEXT {
            Ok(())
        } else {
            Err(SecretsError::DoesNotOpen)
        }
    }

    /// Says which keys are configured, for errors: `a1b2… (seals), c3d4…`.
    pub fn describe(&self) -> String {
        let ids = self.key_ids();
        let mut out = format!("{} (seals)", ids[0]);
        for id in &ids[1..] {
            out.push_str(", ");
            out.push_str(id);
        }
        out
    }

    /// Whether `sealed` is already sealed under the sealing key, so
    /// re-sealing it would change nothing but the nonce.
    pub fn is_current(&self, sealed: &str) -> bool {
        parts(sealed).is_ok_and(|p| p.version == "v2" && p.kid == self.sealing_key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretString {
        SecretString::from(B64.encode([byte; 32]))
    }

    fn cipher(byte: u8) -> TokenCipher {
        TokenCipher::from_base64(&key(byte)).unwrap()
    }

    #[test]
    fn a_sealed_token_opens_for_its_owner_only() {
        let c = cipher(7);
        let token = SecretString::from("1//refresh-token");
        let sealed = c.seal(&token, "alex|google");
        assert!(!sealed.contains("refresh-token"));
        assert!(sealed.starts_with(&format!("v2:{}:", c.sealing_key_id())));
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
    fn the_key_id_is_a_fingerprint_of_the_key() {
        let (a, b) = (cipher(7), cipher(8));
        assert_eq!(a.sealing_key_id(), cipher(7).sealing_key_id());
        assert_ne!(a.sealing_key_id(), b.sealing_key_id());
        assert_eq!(a.sealing_key_id().len(), 2 * KEY_ID_BYTES);
        assert!(a.sealing_key_id().chars().all(|c| c.is_ascii_hexdigit()));
        // Not a plain hash of the key.
        use sha2::Digest;
        let plain = hex::encode(Sha256::digest([7u8; 32]));
        assert!(!plain.starts_with(a.sealing_key_id()));
    }

    #[test]
    fn tampering_truncation_and_other_keys_are_refused() {
        let c = cipher(7);
        let sealed = c.seal(&SecretString::from("t"), "alex|google");
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(c.open(&flipped, "alex|google").is_err());
        assert!(c.open(&sealed[..sealed.len() - 6], "alex|google").is_err());
        assert_eq!(
            cipher(8).open(&sealed, "alex|google").err(),
            Some(SecretsError::UnknownKey(c.sealing_key_id().to_string()))
        );
        // Relabelled with the other key's id, it still does not open.
        let relabelled = sealed.replace(c.sealing_key_id(), cipher(8).sealing_key_id());
        assert_eq!(
            cipher(8).open(&relabelled, "alex|google").err(),
            Some(SecretsError::DoesNotOpen)
        );
        assert_eq!(
            c.open("plaintext", "alex|google").err(),
            Some(SecretsError::Malformed)
        );
        assert!(TokenCipher::from_base64(&SecretString::from("c2hvcnQ=")).is_err());
    }

    #[test]
    fn with_several_keys_the_first_seals_and_each_opens_its_own() {
        let old = cipher(1);
        let sealed_old = old.seal(&SecretString::from("t-old"), "alex|google");
        let both = TokenCipher::from_base64_list(&[key(2), key(1)]).unwrap();
        assert_eq!(
            both.key_ids(),
            [cipher(2).sealing_key_id(), old.sealing_key_id()]
        );
        assert_eq!(
            both.open(&sealed_old, "alex|google")
                .unwrap()
                .expose_secret(),
            "t-old"
        );
        assert!(!both.is_current(&sealed_old));
        let sealed_new = both.seal(&SecretString::from("t-new"), "alex|google");
        assert!(both.is_current(&sealed_new));
        assert!(cipher(2).open(&sealed_new, "alex|google").is_ok());
        assert!(old.open(&sealed_new, "alex|google").is_err());
        assert_eq!(
            TokenCipher::from_base64_list(&[key(2), key(2)]).err(),
            Some(SecretsError::DuplicateKey(
                cipher(2).sealing_key_id().into()
            ))
        );
        assert_eq!(
            TokenCipher::from_base64_list(&[]).err(),
            Some(SecretsError::NoKey)
        );
    }

    #[test]
    fn a_key_check_opens_with_its_keys_only() {
        let check = cipher(1).seal_key_check();
        assert!(cipher(1).open_key_check(&check).is_ok());
        assert!(TokenCipher::from_base64_list(&[key(2), key(1)])
            .unwrap()
            .open_key_check(&check)
            .is_ok());
        assert!(cipher(2).open_key_check(&check).is_err());
        // A token is not a key check.
        let token = cipher(1).seal(&SecretString::from("t"), KEY_CHECK_OWNER);
        assert!(cipher(1).open_key_check(&token).is_err());
    }

    /// A value as callbook sealed it before key ids were fingerprints.
    fn seal_v1(byte: u8, label: &str, token: &str, owner: &str) -> String {
        let c = ChaCha20Poly1305::new_from_slice(&[byte; 32]).unwrap();
        let nonce = Nonce::generate();
        let aad = aad(owner, label);
        let body = c
            .encrypt(
                &nonce,
                Payload {
                    msg: token.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap();
        format!(
            "v1:{label}:{}:{}",
            B64.encode(nonce.as_slice()),
            B64.encode(body)
        )
    }

    #[test]
    fn values_sealed_under_a_label_still_open_with_whichever_key_fits() {
        let v1 = seal_v1(1, "k1", "t", "alex|google");
        let both = TokenCipher::from_base64_list(&[key(2), key(1)]).unwrap();
        assert_eq!(both.open(&v1, "alex|google").unwrap().expose_secret(), "t");
        assert!(!both.is_current(&v1));
        assert_eq!(
            cipher(2).open(&v1, "alex|google").err(),
            Some(SecretsError::DoesNotOpen)
        );
        assert!(both.open(&v1, "mallory|google").is_err());
    }
}
