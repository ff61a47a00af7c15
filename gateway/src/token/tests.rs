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
fn tags_are_compared_on_every_byte() {
    let a = [0u8; TAG_LEN];
    assert!(crate::sys::secrets_equal(&a, &a));
    for i in 0..TAG_LEN {
        let mut b = a;
        b[i] = 1;
        assert!(!crate::sys::secrets_equal(&a, &b));
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
