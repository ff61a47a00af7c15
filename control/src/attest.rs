//! Scan attestations: for each stored file, a statement of what upgate knew when it stored
//! it (the bytes' SHA-256 and size, the sniffed type, the scanner's verdict with its engine
//! and database version, the link's policy, the times), signed with Ed25519 by the control
//! plane. Anyone with the public key can check it offline (docs/keys.md shows how with
//! openssl), and the file's SHA-256 ties it to the downloaded bytes.
//!
//! The statement is JSON, signed as the exact bytes stored and served: verifiers check
//! those bytes, never a re-serialisation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::json;
use upgate_gateway::control_link::NewFile;

use crate::model::Link;

/// What a file carries: which key signed, the statement, the signature (base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub key_id: u32,
    pub statement: String,
    pub signature: String,
}

/// One Ed25519 key of the control plane's; the newest signs, all are published.
pub struct AttestKey {
    pub id: u32,
    pub pair: Ed25519KeyPair,
}

impl AttestKey {
    pub fn from_seed(id: u32, seed: &[u8; 32]) -> Option<AttestKey> {
        Ed25519KeyPair::from_seed_unchecked(seed)
            .ok()
            .map(|pair| AttestKey { id, pair })
    }

    pub fn public(&self) -> [u8; 32] {
        self.pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("Ed25519 public keys are 32 bytes")
    }
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): what OpenSSL reads.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The public key as PEM (`-----BEGIN PUBLIC KEY-----`), for `openssl pkeyutl -verify`.
pub fn public_pem(public: &[u8; 32]) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(public);
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(der)
    )
}

/// The statement for `file`, stored on `link`, at `t`.
pub fn statement(file: &NewFile, link: &Link, key_id: u32, t: u64) -> String {
    json!({
        "version": 1,
        "file_id": file.file_id,
        "account_id": link.account_id,
        "call_id": link.call_id,
        "link_id": link.id,
        "sha256": file.sha256,
        "size": file.size,
        "type": file.kind.mime(),
        // The verdict as recorded: status, engine (with clamd's database version), detail
        // (the signature found, or why it was not scanned) and when.
        "scan": file.verdict,
        "policy": {
            "allowed_types": link.allowed_types,
            "max_file_bytes": link.max_file_bytes,
        },
        "received_at": file.received_at,
        "attested_at": t,
        "key_id": key_id,
    })
    .to_string()
}

/// Signs a statement for `file` with `key`.
pub fn attest(key: &AttestKey, file: &NewFile, link: &Link, t: u64) -> Attestation {
    let statement = statement(file, link, key.id, t);
    let signature = STANDARD.encode(key.pair.sign(statement.as_bytes()).as_ref());
    Attestation {
        key_id: key.id,
        statement,
        signature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032's first test vector: the key, and the signature of the empty message.
    #[test]
    fn signs_as_rfc_8032_says() {
        let seed: [u8; 32] = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
        let key = AttestKey::from_seed(1, &seed).unwrap();
        assert_eq!(
            hex::encode(key.public()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(key.pair.sign(b"").as_ref()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(public_pem(&key.public()).starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
    }
}
