//! Scan attestations: for each stored file, a statement of what upgate knew when it stored
//! it (the bytes' SHA-256 and size, the sniffed type, the scanner's verdict with its engine
//! and database version, the link's policy, the times), signed with Ed25519 by the control
//! plane. Anyone with the public key can check it offline (docs/keys.md shows how with
//! openssl), and the file's SHA-256 ties it to the downloaded bytes.
//!
//! The statement is JSON with sorted keys, built by one function from fields the file's
//! record and its link keep for good; only the signature, the key's id and the time are
//! stored beside the record (a statement per file would triple the record's size, which
//! the store pays on every write near it). The statement served is rebuilt from the same
//! fields, byte for byte, and verifiers check the bytes they are served.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::json;
use upgate_gateway::control_link::NewFile;

use crate::model::Link;

/// What a file's record keeps: which key signed, when, and the signature (base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub key_id: u32,
    pub attested_at: u64,
    pub signature: String,
}

/// What a statement says, from the file and the link it came on.
pub struct Stated<'a> {
    pub file_id: &'a str,
    pub sha256: &'a str,
    pub size: u64,
    pub kind: upgate_gateway::upload::sniff::Kind,
    pub verdict: &'a upgate_gateway::control_link::ScanVerdict,
    pub received_at: u64,
    pub link: &'a Link,
}

impl<'a> Stated<'a> {
    pub fn new_file(file: &'a NewFile, link: &'a Link) -> Stated<'a> {
        Stated {
            file_id: &file.file_id,
            sha256: &file.sha256,
            size: file.size,
            kind: file.kind,
            verdict: &file.verdict,
            received_at: file.received_at,
            link,
        }
    }

    pub fn record(file: &'a crate::model::FileRecord, link: &'a Link) -> Stated<'a> {
        Stated {
            file_id: &file.id,
            sha256: &file.sha256,
            size: file.size,
            kind: file.kind,
            verdict: &file.scan,
            received_at: file.received_at,
            link,
        }
    }
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

/// The statement (version 1: change nothing here, or old signatures stop verifying; a new
/// form is a new version).
pub fn statement(s: &Stated, key_id: u32, attested_at: u64) -> String {
    let link = s.link;
    json!({
        "version": 1,
        "file_id": s.file_id,
        "account_id": link.account_id,
        "call_id": link.call_id,
        "link_id": link.id,
        "sha256": s.sha256,
        "size": s.size,
        "type": s.kind.mime(),
        // The verdict as recorded: status, engine (with clamd's database version), detail
        // (the signature found, or why it was not scanned) and when.
        "scan": s.verdict,
        "policy": {
            "allowed_types": link.allowed_types,
            "max_file_bytes": link.max_file_bytes,
        },
        "received_at": s.received_at,
        "attested_at": attested_at,
        "key_id": key_id,
    })
    .to_string()
}

/// Signs the statement for `file` on `link` with `key` at `t`.
pub fn attest(key: &AttestKey, file: &NewFile, link: &Link, t: u64) -> Attestation {
    sign(key, &Stated::new_file(file, link), t)
}

/// Signs what `stated` says with `key` at `t` (a quarantined file is signed again when its
/// scan decides its verdict).
pub fn sign(key: &AttestKey, stated: &Stated, t: u64) -> Attestation {
    let statement = statement(stated, key.id, t);
    let signature = STANDARD.encode(key.pair.sign(statement.as_bytes()).as_ref());
    Attestation {
        key_id: key.id,
        attested_at: t,
        signature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statement served is rebuilt from the record; it must be the very bytes signed
    /// when the file was recorded, through the real commit path.
    #[tokio::test]
    async fn the_statement_served_is_the_one_signed() {
        use std::sync::Arc;
        use upgate_gateway::control_link::ControlLink;
        let f = crate::service::fixture::fixture().await;
        let id = f.link_on_call("c", "+14155550123").await;
        let gw: Arc<dyn ControlLink> = Arc::new(crate::service::InProcess(f.svc.clone()));
        let claim = gw.claim(&id).await.unwrap().unwrap();
        let file = crate::repo::links_suite::file();
        let file_id = file.file_id.clone();
        gw.commit(&claim, file).await.unwrap().unwrap();

        let (record, statement) = f.svc.attestation(&f.actor, &file_id).await.unwrap();
        let a = record.attestation.unwrap();
        let keys = f.svc.keys.current();
        let key = keys.attestation.iter().find(|k| k.id == a.key_id).unwrap();
        let public = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key.public());
        let signature = STANDARD.decode(&a.signature).unwrap();
        public
            .verify(statement.as_bytes(), &signature)
            .expect("the served statement verifies");
        let stated: serde_json::Value = serde_json::from_str(&statement).unwrap();
        assert_eq!(
            (stated["file_id"].as_str(), stated["call_id"].as_str()),
            (Some(file_id.as_str()), Some("c"))
        );
        assert!(public
            .verify(statement.replace("\"c\"", "\"d\"").as_bytes(), &signature)
            .is_err());
    }

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
