//! Signed upload-link token: `key id | link id | expiry | truncated HMAC-SHA256`, 33 bytes,
//! 44 characters of unpadded base64url, so `https://HOST/u/TOKEN` fits in one SMS.
//! Layout, MAC input and a test vector are specified in `docs/link-token.md`.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;

/// Length of a token in characters (and bytes: the alphabet is ASCII).
pub const TOKEN_LEN: usize = 44;

/// Length of the random link id in bytes (96 bits).
pub const LINK_ID_LEN: usize = 12;

/// Length of the truncated HMAC-SHA256 tag in bytes (128 bits).
pub const TAG_LEN: usize = 16;

/// Prepended to every MAC input so that a tag computed for any other purpose with the
/// same key (a future token version, another message type) can never verify as a link.
/// Fixed length and NUL-terminated, so it cannot run into the fields that follow.
const MAC_LABEL: &[u8; 15] = b"upgate-link-v1\0";

/// key id (1) + link id (12) + expiry (4): the fixed-length fields the MAC covers.
const FIELDS_LEN: usize = 1 + LINK_ID_LEN + 4;
/// Decoded token length: fields + tag = 33 bytes, a multiple of 3, so base64 has no
/// partial final group: every 44-character string over the alphabet decodes to exactly
/// one 33-byte value and back, and there are no padding or non-canonical trailing bits.
const RAW_LEN: usize = FIELDS_LEN + TAG_LEN;

const _: () = assert!(RAW_LEN % 3 == 0 && RAW_LEN / 3 * 4 == TOKEN_LEN);

/// The random identifier of one upload link (96 bits), the key for the link's record.
///
/// Text form: exactly 24 lowercase hex characters, nothing else accepted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct LinkId(pub [u8; LINK_ID_LEN]);

/// The operating system's random number generator failed (it does not on a healthy host).
#[derive(Debug, thiserror::Error)]
#[error("system random number generator failed")]
pub struct RngError;

impl LinkId {
    /// A fresh id from the operating system's CSPRNG.
    pub fn random() -> Result<Self, RngError> {
        crate::sys::random().map(Self).map_err(|_| RngError)
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A string that is not exactly 24 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a link id is exactly 24 lowercase hex characters")]
pub struct ParseLinkIdError;

impl FromStr for LinkId {
    type Err = ParseLinkIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Hand-rolled rather than u8::from_str_radix, which would also accept `+` and
        // uppercase: ids in URLs are checked against one strict alphabet, so that every
        // id has exactly one spelling.
        fn nibble(c: u8) -> Result<u8, ParseLinkIdError> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                _ => Err(ParseLinkIdError),
            }
        }
        let s = s.as_bytes();
        if s.len() != 2 * LINK_ID_LEN {
            return Err(ParseLinkIdError);
        }
        let mut out = [0u8; LINK_ID_LEN];
        for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(Self(out))
    }
}

// On the wire (the internal API) a link id is its text form, checked as strictly as in a URL.
impl serde::Serialize for LinkId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for LinkId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One link-signing key: its id (carried in every token) and the HMAC-SHA256 key.
#[derive(Clone)]
pub struct LinkKey {
    id: u8,
    key: hmac::Key,
}

impl LinkKey {
    /// `secret` must be 32 bytes from a CSPRNG (the operator's key file).
    pub fn new(id: u8, secret: &[u8; 32]) -> Self {
        Self {
            id,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    pub fn id(&self) -> u8 {
        self.id
    }
}

impl fmt::Debug for LinkKey {
    // Written by hand so that no future change to ring's Debug can leak key material
    // into a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a keyring could not be built or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// Two keys share an id: a token could not say which one signed it.
    #[error("link key id {0} appears more than once")]
    DuplicateId(u8),
    /// The key chosen for issuing new links is not in the ring.
    #[error("current link key id {0} is not in the keyring")]
    UnknownCurrent(u8),
    /// The current key signs new links, so retiring it would leave nothing to issue with;
    /// make another key current first.
    #[error("link key id {0} is the current key and cannot be retired")]
    RetireCurrent(u8),
    /// No key with this id is in the ring.
    #[error("link key id {0} is not in the keyring")]
    UnknownId(u8),
}

/// The keys that verify links: the current one signs new links, older ones stay so that
/// links issued before a rotation keep working until their key is retired.
#[derive(Clone)]
pub struct LinkKeyring {
    keys: Vec<LinkKey>,
    /// A copy of the key in `keys` that signs new links (kept by value so `current()`
    /// needs no lookup that could fail; `retire` refuses to remove it).
    current: LinkKey,
    /// Used for the MAC when the token's key id is unknown, so that path costs the same
    /// one HMAC as every other forgery. Its result is always discarded, so its value does
    /// not need to be secret.
    dummy: hmac::Key,
}

impl fmt::Debug for LinkKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkKeyring")
            .field("keys", &self.keys)
            .field("current", &self.current.id)
            .finish_non_exhaustive()
    }
}

impl LinkKeyring {
    /// Fails if two keys share an id or if `current` is not among `keys`.
    pub fn new(keys: Vec<LinkKey>, current: u8) -> Result<Self, KeyringError> {
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|other| other.id == k.id) {
                return Err(KeyringError::DuplicateId(k.id));
            }
        }
        let current = keys
            .iter()
            .find(|k| k.id == current)
            .cloned()
            .ok_or(KeyringError::UnknownCurrent(current))?;
        Ok(Self {
            keys,
            current,
            dummy: hmac::Key::new(hmac::HMAC_SHA256, &[0u8; 32]),
        })
    }

    /// Every key's id, in the order given.
    pub fn ids(&self) -> Vec<u8> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// The key that signs new links.
    pub fn current(&self) -> &LinkKey {
        &self.current
    }

    pub fn get(&self, id: u8) -> Option<&LinkKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Removes a key: every link it signed becomes `Invalid` at once.
    pub fn retire(&mut self, id: u8) -> Result<(), KeyringError> {
        if id == self.current.id {
            return Err(KeyringError::RetireCurrent(id));
        }
        let before = self.keys.len();
        self.keys.retain(|k| k.id != id);
        if self.keys.len() == before {
            return Err(KeyringError::UnknownId(id));
        }
        Ok(())
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub key_id: u8,
    pub link_id: LinkId,
    /// Unix seconds; the link works while `now < expires_at`.
    pub expires_at: u64,
}

/// Why a token was refused. Never contains the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, truncated, unknown or retired key id, or bad MAC. Deliberately one
    /// variant: callers cannot branch on why a forgery failed, so every forgery gets the
    /// same response.
    #[error("invalid link token")]
    Invalid,
    /// The MAC is valid but the link has expired. Only a token we issued can get here,
    /// so the caller may be shown the "link expired" page for this link.
    #[error("link token expired")]
    Expired(Claims),
}

fn fields(key_id: u8, link_id: &LinkId, expiry: u32) -> [u8; FIELDS_LEN] {
    let mut f = [0u8; FIELDS_LEN];
    f[0] = key_id;
    f[1..1 + LINK_ID_LEN].copy_from_slice(&link_id.0);
    f[1 + LINK_ID_LEN..].copy_from_slice(&expiry.to_be_bytes());
    f
}

fn full_tag(key: &hmac::Key, fields: &[u8; FIELDS_LEN]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(MAC_LABEL);
    ctx.update(fields);
    ctx.sign()
}

/// Signs a link. The token is a bearer secret: never log it.
///
/// The format holds the expiry as a u32 (good until 2106-02-07). A larger `expires_at`
/// is a programming error; it is clamped to `u32::MAX`, which can only make the link
/// expire earlier than asked, never later.
pub fn issue(key: &LinkKey, link_id: &LinkId, expires_at: u64) -> String {
    let expiry = u32::try_from(expires_at).unwrap_or(u32::MAX);
    let f = fields(key.id, link_id, expiry);
    let tag = full_tag(&key.key, &f);
    let mut raw = [0u8; RAW_LEN];
    raw[..FIELDS_LEN].copy_from_slice(&f);
    raw[FIELDS_LEN..].copy_from_slice(&tag.as_ref()[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Cheap pre-check usable on any path segment before anything else: exactly
/// [`TOKEN_LEN`] characters of the base64url alphabet, no padding.
pub fn looks_like_token(s: &str) -> bool {
    s.len() == TOKEN_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Verifies a token. Pure and cheap: no I/O, no lookup beyond the in-memory keyring,
/// exactly one HMAC for every token that passes the alphabet check.
///
/// Order: length and alphabet -> decode -> key lookup -> MAC (constant time) -> expiry.
pub fn verify(keyring: &LinkKeyring, token: &str, now: u64) -> Result<Claims, TokenError> {
    if !looks_like_token(token) {
        return Err(TokenError::Invalid);
    }
    let mut raw = [0u8; RAW_LEN];
    match URL_SAFE_NO_PAD.decode_slice(token, &mut raw) {
        Ok(RAW_LEN) => {}
        _ => return Err(TokenError::Invalid),
    }
    let mut f = [0u8; FIELDS_LEN];
    f.copy_from_slice(&raw[..FIELDS_LEN]);
    let mut given = [0u8; TAG_LEN];
    given.copy_from_slice(&raw[FIELDS_LEN..]);

    // An unknown key id still costs one MAC (against the dummy key) so that its
    // response time matches a bad MAC under a known key; `&` rather than `&&` so that
    // the comparison is not skipped either.
    let known = keyring.get(f[0]);
    let key = known.map_or(&keyring.dummy, |k| &k.key);
    let tag = full_tag(key, &f);
    let mut expected = [0u8; TAG_LEN];
    expected.copy_from_slice(&tag.as_ref()[..TAG_LEN]);
    if !(known.is_some() & crate::sys::secrets_equal(&expected, &given)) {
        return Err(TokenError::Invalid);
    }

    let mut link_id = [0u8; LINK_ID_LEN];
    link_id.copy_from_slice(&f[1..1 + LINK_ID_LEN]);
    let mut expiry = [0u8; 4];
    expiry.copy_from_slice(&f[1 + LINK_ID_LEN..]);
    let claims = Claims {
        key_id: f[0],
        link_id: LinkId(link_id),
        expires_at: u64::from(u32::from_be_bytes(expiry)),
    };
    if now >= claims.expires_at {
        return Err(TokenError::Expired(claims));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests;
