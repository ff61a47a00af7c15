//! Signed upload-link token: `key id | link id | expiry | truncated HMAC-SHA256`, 33 bytes,
//! 44 characters of unpadded base64url, so `https://HOST/u/TOKEN` fits in one SMS.
//! Layout, MAC input and a test vector are specified in `docs/link-token.md`.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

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
        let mut bytes = [0u8; LINK_ID_LEN];
        SystemRandom::new().fill(&mut bytes).map_err(|_| RngError)?;
        Ok(Self(bytes))
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

/// Compares two tags in time independent of where they differ.
///
/// ring 0.17 verifies only full-length tags (`hmac::verify`), and its
/// `constant_time::verify_slices_are_equal` is deprecated, hidden, and documented as
/// making "no promises regarding side channels". So: OR together the XOR of every byte
/// pair with no early exit, and pass the result through `black_box` so the optimiser
/// has no reason to turn the loop into a short-circuiting compare.
fn tags_equal(a: &[u8; TAG_LEN], b: &[u8; TAG_LEN]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
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
    if !(known.is_some() & tags_equal(&expected, &given)) {
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(id: u8, fill: u8) -> LinkKey {
        LinkKey::new(id, &[fill; 32])
    }

    fn ring_of(keys: Vec<LinkKey>, current: u8) -> LinkKeyring {
        LinkKeyring::new(keys, current).expect("valid keyring")
    }

    const LID: LinkId = LinkId([7; LINK_ID_LEN]);
    const NOW: u64 = 1_700_000_000;

    // The vector of docs/link-token.md, computed independently of this code.
    const VECTOR_SECRET_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const VECTOR_KEY_ID: u8 = 1;
    const VECTOR_LINK_ID: &str = "a0a1a2a3a4a5a6a7a8a9aaab";
    const VECTOR_EXPIRES_AT: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    const VECTOR_TOKEN: &str = "AaChoqOkpaanqKmqq2lVuQDkrCckMJMKMSFCRHbEMFo1";

    fn decode_hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    fn raw(token: &str) -> [u8; RAW_LEN] {
        let mut r = [0u8; RAW_LEN];
        assert_eq!(URL_SAFE_NO_PAD.decode_slice(token, &mut r).unwrap(), RAW_LEN);
        r
    }

    #[test]
    fn roundtrip() {
        let k = key(3, 0x42);
        let ring = ring_of(vec![k.clone()], 3);
        let t = issue(&k, &LID, NOW + 600);
        assert_eq!(t.len(), TOKEN_LEN);
        assert!(looks_like_token(&t));
        let c = verify(&ring, &t, NOW).unwrap();
        assert_eq!(
            c,
            Claims {
                key_id: 3,
                link_id: LID,
                expires_at: NOW + 600
            }
        );
    }

    #[test]
    fn test_vector() {
        let k = LinkKey::new(VECTOR_KEY_ID, &decode_hex32(VECTOR_SECRET_HEX));
        let lid: LinkId = VECTOR_LINK_ID.parse().unwrap();
        let t = issue(&k, &lid, VECTOR_EXPIRES_AT);
        assert_eq!(t, VECTOR_TOKEN);
        let ring = ring_of(vec![k], VECTOR_KEY_ID);
        let c = verify(&ring, VECTOR_TOKEN, VECTOR_EXPIRES_AT - 1).unwrap();
        assert_eq!(c.link_id, lid);
        assert_eq!(c.expires_at, VECTOR_EXPIRES_AT);
        assert_eq!(
            verify(&ring, VECTOR_TOKEN, VECTOR_EXPIRES_AT),
            Err(TokenError::Expired(c))
        );
    }

    #[test]
    fn every_single_bit_flip_is_invalid() {
        // Exhaustive over all 264 bits, including flips that turn the key id into
        // another known key and flips that move the expiry into the past.
        let k1 = key(1, 0x11);
        let k2 = key(3, 0x22); // id 3 = 1 ^ 0b10: reachable by one flip
        let ring = ring_of(vec![k1.clone(), k2], 1);
        let t = issue(&k1, &LID, NOW + 100);
        let r = raw(&t);
        for i in 0..RAW_LEN {
            for bit in 0..8 {
                let mut m = r;
                m[i] ^= 1 << bit;
                let forged = URL_SAFE_NO_PAD.encode(m);
                assert_eq!(
                    verify(&ring, &forged, NOW),
                    Err(TokenError::Invalid),
                    "byte {i} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn unknown_key_id_is_invalid() {
        let k = key(9, 0x33);
        let ring = ring_of(vec![key(1, 0x11)], 1);
        assert_eq!(
            verify(&ring, &issue(&k, &LID, NOW + 60), NOW),
            Err(TokenError::Invalid)
        );
        // Even a token whose MAC is valid under the dummy key is refused.
        let dummy = LinkKey::new(9, &[0u8; 32]);
        assert_eq!(
            verify(&ring, &issue(&dummy, &LID, NOW + 60), NOW),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn retired_key_is_invalid() {
        let (old, new) = (key(1, 0x11), key(2, 0x22));
        let mut ring = ring_of(vec![old.clone(), new.clone()], 2);
        let t = issue(&old, &LID, NOW + 60);
        assert!(verify(&ring, &t, NOW).is_ok());
        ring.retire(1).unwrap();
        assert_eq!(verify(&ring, &t, NOW), Err(TokenError::Invalid));
        assert_eq!(ring.retire(1), Err(KeyringError::UnknownId(1)));
        assert_eq!(ring.retire(2), Err(KeyringError::RetireCurrent(2)));
        assert!(verify(&ring, &issue(&new, &LID, NOW + 60), NOW).is_ok());
    }

    #[test]
    fn rotation_keeps_old_links_valid() {
        let (old, new) = (key(1, 0x11), key(2, 0x22));
        let before = ring_of(vec![old.clone()], 1);
        let t_old = issue(before.current(), &LID, NOW + 60);
        let after = ring_of(vec![old, new], 2);
        assert_eq!(after.current().id(), 2);
        let t_new = issue(after.current(), &LID, NOW + 60);
        assert_ne!(t_old, t_new);
        assert_eq!(verify(&after, &t_old, NOW).unwrap().key_id, 1);
        assert_eq!(verify(&after, &t_new, NOW).unwrap().key_id, 2);
        // The old ring does not know the new key.
        assert_eq!(verify(&before, &t_new, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn expiry_boundary() {
        let k = key(1, 0x11);
        let ring = ring_of(vec![k.clone()], 1);
        let t = issue(&k, &LID, NOW);
        assert!(verify(&ring, &t, NOW - 1).is_ok());
        let claims = Claims {
            key_id: 1,
            link_id: LID,
            expires_at: NOW,
        };
        assert_eq!(verify(&ring, &t, NOW), Err(TokenError::Expired(claims.clone())));
        assert_eq!(verify(&ring, &t, u64::MAX), Err(TokenError::Expired(claims)));
    }

    #[test]
    fn expired_and_tampered_is_invalid() {
        let k = key(1, 0x11);
        let ring = ring_of(vec![k.clone()], 1);
        let t = issue(&k, &LID, NOW - 10);
        assert!(matches!(verify(&ring, &t, NOW), Err(TokenError::Expired(_))));
        // Tamper with the link id, the tag, and (to extend it) the expiry.
        for i in [5, RAW_LEN - 1, FIELDS_LEN - 1] {
            let mut m = raw(&t);
            m[i] ^= 0x80;
            let forged = URL_SAFE_NO_PAD.encode(m);
            assert_eq!(verify(&ring, &forged, NOW), Err(TokenError::Invalid));
        }
    }

    #[test]
    fn expiry_beyond_u32_is_clamped() {
        let k = key(1, 0x11);
        let ring = ring_of(vec![k.clone()], 1);
        let t = issue(&k, &LID, u64::MAX);
        assert_eq!(t, issue(&k, &LID, u64::from(u32::MAX)));
        assert_eq!(verify(&ring, &t, NOW).unwrap().expires_at, u64::from(u32::MAX));
    }

    #[test]
    fn keyring_rejects_bad_configs() {
        assert_eq!(
            LinkKeyring::new(vec![], 0).unwrap_err(),
            KeyringError::UnknownCurrent(0)
        );
        assert_eq!(
            LinkKeyring::new(vec![key(1, 1)], 2).unwrap_err(),
            KeyringError::UnknownCurrent(2)
        );
        assert_eq!(
            LinkKeyring::new(vec![key(1, 1), key(1, 2)], 1).unwrap_err(),
            KeyringError::DuplicateId(1)
        );
    }

    #[test]
    fn debug_does_not_show_secret() {
        let k = key(4, 0xab);
        let d = format!("{k:?} {:?}", ring_of(vec![k.clone()], 4));
        assert!(d.contains("id: 4"), "{d}");
        assert!(!d.to_lowercase().contains("ab, ab"), "{d}");
        assert!(!d.contains("171"), "{d}");
    }

    #[test]
    fn looks_like_token_edges() {
        let good = "A".repeat(TOKEN_LEN);
        assert!(looks_like_token(&good));
        assert!(looks_like_token(&"-_09az".repeat(8)[..TOKEN_LEN]));
        assert!(!looks_like_token(&"A".repeat(TOKEN_LEN - 1)));
        assert!(!looks_like_token(&"A".repeat(TOKEN_LEN + 1)));
        assert!(!looks_like_token(""));
        for bad in ['=', '+', '/', '.', ' ', '%', '\0'] {
            let s = format!("{}{bad}", &good[1..]);
            assert!(!looks_like_token(&s), "{bad:?}");
        }
        // 44 bytes but 43 characters: still refused.
        let s = format!("{}é", &good[2..]);
        assert_eq!(s.len(), TOKEN_LEN);
        assert!(!looks_like_token(&s));
    }

    #[test]
    fn link_id_text_form() {
        let id = LinkId([0x0f; LINK_ID_LEN]);
        assert_eq!(id.to_string(), "0f".repeat(LINK_ID_LEN));
        assert_eq!(id.to_string().parse::<LinkId>(), Ok(id));
        for bad in [
            "0F0F0F0F0F0F0F0F0F0F0F0F",
            "0f0f0f0f0f0f0f0f0f0f0f0",
            "0f0f0f0f0f0f0f0f0f0f0f0f0",
            "0f0f0f0f0f0f0f0f0f0f0f0g",
            "+f0f0f0f0f0f0f0f0f0f0f0f",
            "",
        ] {
            assert_eq!(bad.parse::<LinkId>(), Err(ParseLinkIdError), "{bad}");
        }
        let a = LinkId::random().unwrap();
        let b = LinkId::random().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn tags_equal_compares_every_byte() {
        let a = [0u8; TAG_LEN];
        assert!(tags_equal(&a, &a));
        for i in 0..TAG_LEN {
            let mut b = a;
            b[i] = 1;
            assert!(!tags_equal(&a, &b));
        }
    }

    fn any_link_id() -> impl Strategy<Value = LinkId> {
        any::<[u8; LINK_ID_LEN]>().prop_map(LinkId)
    }

    proptest! {
        #[test]
        fn prop_roundtrip(secret in any::<[u8; 32]>(), kid in any::<u8>(),
                          lid in any_link_id(), exp in 1u64..=u64::from(u32::MAX)) {
            let k = LinkKey::new(kid, &secret);
            let ring = ring_of(vec![k.clone()], kid);
            let t = issue(&k, &lid, exp);
            prop_assert!(looks_like_token(&t));
            prop_assert_eq!(verify(&ring, &t, exp - 1),
                Ok(Claims { key_id: kid, link_id: lid, expires_at: exp }));
        }

        #[test]
        fn prop_bit_flip_invalid(secret in any::<[u8; 32]>(), lid in any_link_id(),
                                 exp in any::<u32>(), byte in 0..RAW_LEN, bit in 0u8..8,
                                 now in any::<u64>()) {
            let k = LinkKey::new(0, &secret);
            let ring = ring_of(vec![k.clone()], 0);
            let mut m = raw(&issue(&k, &lid, u64::from(exp)));
            m[byte] ^= 1 << bit;
            prop_assert_eq!(verify(&ring, &URL_SAFE_NO_PAD.encode(m), now),
                Err(TokenError::Invalid));
        }

        #[test]
        fn prop_truncation_invalid(lid in any_link_id(), cut in 0..TOKEN_LEN) {
            let k = key(1, 0x11);
            let ring = ring_of(vec![k.clone()], 1);
            let t = issue(&k, &lid, NOW + 60);
            prop_assert_eq!(verify(&ring, &t[..cut], NOW), Err(TokenError::Invalid));
            prop_assert_eq!(verify(&ring, &t[TOKEN_LEN - cut..], NOW),
                Err(TokenError::Invalid));
        }

        #[test]
        fn prop_extension_invalid(lid in any_link_id(), extra in "\\PC{1,8}",
                                  front in any::<bool>()) {
            let k = key(1, 0x11);
            let ring = ring_of(vec![k.clone()], 1);
            let t = issue(&k, &lid, NOW + 60);
            let s = if front { format!("{extra}{t}") } else { format!("{t}{extra}") };
            prop_assert_eq!(verify(&ring, &s, NOW), Err(TokenError::Invalid));
        }

        #[test]
        fn prop_random_alphabet_strings_invalid(s in "[A-Za-z0-9_-]{44}", now in any::<u64>()) {
            let ring = ring_of(vec![key(0, 0), key(1, 0x11)], 1);
            prop_assert_eq!(verify(&ring, &s, now), Err(TokenError::Invalid));
        }

        #[test]
        fn prop_random_strings_never_panic(s in "\\PC{0,50}", now in any::<u64>()) {
            let ring = ring_of(vec![key(1, 0x11)], 1);
            prop_assert_eq!(verify(&ring, &s, now), Err(TokenError::Invalid));
        }

        #[test]
        fn prop_expired_only_with_valid_mac(lid in any_link_id(), exp in any::<u32>(),
                                            late in 0u64..1_000_000, byte in 0..RAW_LEN,
                                            bit in 0u8..8) {
            let k = key(1, 0x11);
            let ring = ring_of(vec![k.clone()], 1);
            let t = issue(&k, &lid, u64::from(exp));
            let now = u64::from(exp) + late;
            prop_assert!(matches!(verify(&ring, &t, now), Err(TokenError::Expired(_))));
            let mut m = raw(&t);
            m[byte] ^= 1 << bit;
            prop_assert_eq!(verify(&ring, &URL_SAFE_NO_PAD.encode(m), now),
                Err(TokenError::Invalid));
        }

        #[test]
        fn prop_link_id_text_roundtrip(lid in any_link_id()) {
            let s = lid.to_string();
            prop_assert_eq!(s.len(), 24);
            prop_assert_eq!(s.parse::<LinkId>(), Ok(lid));
        }
    }
}
