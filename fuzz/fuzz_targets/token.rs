//! Link tokens (gateway/src/token.rs): `verify` never panics on any string; a token that
//! verifies has exactly one spelling (the one `issue` gives for its claims); issued tokens
//! round-trip; a token with any one character changed is refused as `Invalid`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upgate_gateway::token::{
    issue, looks_like_token, verify, Claims, LinkId, LinkKey, LinkKeyring, TokenError,
};

/// The key of the test vector in docs/link-token.md (id 1), so that the vector's token is
/// a seed that verifies, and a second key (id 2).
fn keyring() -> LinkKeyring {
    let vector: [u8; 32] = std::array::from_fn(|i| i as u8);
    LinkKeyring::new(vec![LinkKey::new(1, &vector), LinkKey::new(2, &[0x5a; 32])], 1)
        .expect("distinct ids, current among them")
}

/// Before the vector's expiry (1767225600), so that it verifies.
const NOW: u64 = 1_767_225_000;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fuzz_target!(|data: &[u8]| {
    let ring = keyring();

    if let Ok(text) = std::str::from_utf8(data) {
        let claims = match verify(&ring, text, NOW) {
            Ok(claims) | Err(TokenError::Expired(claims)) => Some(claims),
            Err(TokenError::Invalid) => None,
        };
        if let Some(c) = claims {
            let key = ring.get(c.key_id).expect("verified under a key of the ring");
            assert_eq!(
                issue(key, &c.link_id, c.expires_at),
                text,
                "a second spelling verified"
            );
        }
        if let Ok(id) = text.parse::<LinkId>() {
            assert_eq!(id.to_string(), text, "a second spelling of a link id parsed");
        }
    }

    // Fields from the input: link id (12), expiry (4), key (1), a position and a character.
    if data.len() < 19 {
        return;
    }
    let link_id = LinkId(data[..12].try_into().expect("12 bytes"));
    let expires_at = u64::from(u32::from_be_bytes(data[12..16].try_into().expect("4 bytes")));
    let key = ring.get(1 + data[16] % 2).expect("ids 1 and 2");
    let token = issue(key, &link_id, expires_at);
    assert!(looks_like_token(&token));
    let expected = Claims {
        key_id: key.id(),
        link_id,
        expires_at,
    };
    match verify(&ring, &token, NOW) {
        Ok(c) => assert!(c == expected && NOW < expires_at),
        Err(TokenError::Expired(c)) => assert!(c == expected && NOW >= expires_at),
        Err(TokenError::Invalid) => panic!("an issued token was refused"),
    }

    let mut changed = token.into_bytes();
    let at = usize::from(data[17]) % changed.len();
    let with = ALPHABET[usize::from(data[18]) % ALPHABET.len()];
    if changed[at] != with {
        changed[at] = with;
        let changed = String::from_utf8(changed).expect("ASCII");
        assert_eq!(verify(&ring, &changed, NOW), Err(TokenError::Invalid));
    }
});
