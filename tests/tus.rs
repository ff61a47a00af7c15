//! Resumable uploads (tus 1.0) under a link, spoken byte for byte as the protocol says, against
//! the real binary over TLS: create, resume after a pause, offsets that must match, checksums,
//! limits refused before any byte, a wrong type refused at the first bytes, termination that
//! gives the slot back, and a revoked link that stops an upload at its next request.

mod common;

use base64::Engine;
use reqwest::{Client, Method, Response};
use serde_json::Value;

use common::files::{pdf, png, sha256_hex};
use common::scene::{scene, settings, Scene};
use common::upgate::Upgate;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

struct Tus {
    client: Client,
    /// `https://host/u/TOKEN/tus`
    base: String,
}

impl Tus {
    fn new(up: &Upgate, link: &str) -> Tus {
        Tus {
            client: up.gateway_client(),
            base: format!("{link}/tus"),
        }
    }

    async fn create(&self, length: u64, name: &str, body: Option<Vec<u8>>) -> Response {
        let mut req = self
            .client
            .post(&self.base)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", length.to_string())
            .header(
                "Upload-Metadata",
                format!(
                    "filename {},filetype {}",
                    b64(name.as_bytes()),
                    b64(b"application/pdf")
                ),
            );
        if let Some(body) = body {
            req = req
                .header("Content-Type", "application/offset+octet-stream")
                .body(body);
        }
        req.send().await.unwrap()
    }

    /// The upload's URL from a creation's `Location` (made absolute on our gateway).
    fn at(&self, created: &Response) -> String {
        let location = created.headers()["location"].to_str().unwrap();
        let origin = &self.base[..self.base.find("/u/").unwrap()];
        format!("{origin}{location}")
    }

    async fn patch(&self, url: &str, offset: u64, bytes: &[u8], checksum: Option<String>) -> Response {
        let mut req = self
            .client
            .patch(url)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .body(bytes.to_vec());
        if let Some(c) = checksum {
            req = req.header("Upload-Checksum", c);
        }
        req.send().await.unwrap()
    }

    async fn head(&self, url: &str) -> Response {
        self.client
            .request(Method::HEAD, url)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap()
    }

    async fn delete(&self, url: &str) -> Response {
        self.client
            .delete(url)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap()
    }
}

fn offset(r: &Response) -> u64 {
    r.headers()["upload-offset"].to_str().unwrap().parse().unwrap()
}

async fn call(scene: &Scene, id: &str) -> Value {
    scene.reviewer.get(&format!("/v1/calls/{id}")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_in_pieces_with_pauses_is_stored_whole() {
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(3, 1 << 20)).await;
    let (link, _) = scene.link("call-tus").await;
    let tus = Tus::new(&up, &link);

    // What the server speaks.
    let options = tus
        .client
        .request(Method::OPTIONS, &tus.base)
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), 204);
    assert_eq!(options.headers()["tus-version"], "1.0.0");
    let ext = options.headers()["tus-extension"].to_str().unwrap().to_string();
    for e in [
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
        "checksum",
    ] {
        assert!(ext.split(',').any(|x| x == e), "{ext}");
    }
    // Without Tus-Resumable: 412, naming the version.
    let bare = tus
        .client
        .post(&tus.base)
        .header("Upload-Length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 412);
    assert_eq!(bare.headers()["tus-version"], "1.0.0");

    let file = pdf("resumable", 300_000);
    let created = tus.create(file.len() as u64, "contract.pdf", None).await;
    assert_eq!(created.status(), 201);
    assert_eq!(offset(&created), 0);
    assert!(created.headers().contains_key("upload-expires"));
    let url = tus.at(&created);
    let id = url.rsplit('/').next().unwrap().to_string();
    assert_eq!(id.len(), 32, "128 random bits");

    // The first third, then the server says where it stands.
    let third = file.len() / 3;
    let r = tus.patch(&url, 0, &file[..third], None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(offset(&r), third as u64);
    let h = tus.head(&url).await;
    assert_eq!(h.status(), 200);
    assert_eq!(offset(&h), third as u64);
    assert_eq!(h.headers()["upload-length"], file.len().to_string().as_str());
    assert_eq!(h.headers()["cache-control"], "no-store");

    // A PATCH at the wrong offset changes nothing.
    let r = tus.patch(&url, 0, &file[..third], None).await;
    assert_eq!(r.status(), 409);
    assert_eq!(offset(&r), third as u64);

    // A chunk that fails its checksum is not kept; the same chunk with its own is.
    let chunk = &file[third..2 * third];
    let wrong = format!("sha256 {}", b64(&[0u8; 32]));
    let r = tus.patch(&url, third as u64, chunk, Some(wrong)).await;
    assert_eq!(r.status().as_u16(), 460);
    assert_eq!(offset(&tus.head(&url).await), third as u64);
    let right = format!("sha1 {}", b64(ring_sha1(chunk).as_slice()));
    let r = tus.patch(&url, third as u64, chunk, Some(right)).await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);

    // The rest: stored, with the name from the metadata and the whole file's hash.
    let r = tus.patch(&url, 2 * third as u64, &file[2 * third..], None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(offset(&r), file.len() as u64);
    let c = call(&scene, "call-tus").await;
    let files = c["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{c}");
    assert_eq!(files[0]["name"], "contract.pdf");
    assert_eq!(files[0]["sha256"], sha256_hex(&file));
    // A finished upload is gone.
    assert_eq!(tus.head(&url).await.status(), 404);

    // creation-with-upload: a small file in one request.
    let small = pdf("in one go", 2_000);
    let r = tus
        .create(small.len() as u64, "one.pdf", Some(small.clone()))
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(offset(&r), small.len() as u64);
    assert_eq!(
        call(&scene, "call-tus").await["files"].as_array().unwrap().len(),
        2
    );
}

fn ring_sha1(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
        .as_ref()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_types_termination_and_revocation_hold() {
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(2, 100_000)).await;
    let (link, link_id) = scene.link("call-limits").await;
    let tus = Tus::new(&up, &link);

    // Declared empty: refused at once (it would be complete with nothing to check).
    let r = tus.create(0, "empty.pdf", None).await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "empty_file");

    // Declared over the limit: 413 before any byte, and no slot taken.
    let r = tus.create(100_001, "big.pdf", None).await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "file_too_large");

    // A PNG on a PDF/JPEG link: refused at the first PATCH that shows it, the upload gone,
    // the refusal on the call.
    let image = png(400, 400);
    let r = tus.create(image.len() as u64, "photo.png", None).await;
    assert_eq!(r.status(), 201);
    let url = tus.at(&r);
    let r = tus.patch(&url, 0, &image, None).await;
    assert_eq!(r.status(), 415);
    assert_eq!(tus.head(&url).await.status(), 404);
    let c = call(&scene, "call-limits").await;
    assert_eq!(c["events"][0]["detail"]["code"], "type_not_allowed", "{c}");

    // Two slots: two uploads hold them; a third is refused until one is terminated.
    let doc = pdf("slot", 5_000);
    let a = tus.at(&tus.create(doc.len() as u64, "a.pdf", None).await);
    let _b = tus.at(&tus.create(doc.len() as u64, "b.pdf", None).await);
    assert_eq!(tus.create(doc.len() as u64, "c.pdf", None).await.status(), 410);
    assert_eq!(tus.delete(&a).await.status(), 204);
    assert_eq!(tus.head(&a).await.status(), 404);
    let c_url = tus.at(&tus.create(doc.len() as u64, "c.pdf", None).await);

    // More bytes than declared: refused, nothing stored.
    let r = tus
        .patch(&c_url, 0, &[doc.clone(), b"extra".to_vec()].concat(), None)
        .await;
    assert_eq!(r.status(), 400);

    // Revoked: the running upload stops at its next request.
    let d_url = tus.at(&tus.create(doc.len() as u64, "d.pdf", None).await);
    assert_eq!(tus.patch(&d_url, 0, &doc[..1000], None).await.status(), 204);
    let (status, _) = scene
        .integration
        .call(Method::DELETE, &format!("/v1/upload-links/{link_id}"), None)
        .await;
    assert!(status.is_success());
    assert_eq!(tus.patch(&d_url, 1000, &doc[1000..], None).await.status(), 410);
    assert_eq!(tus.head(&d_url).await.status(), 410);
    assert!(call(&scene, "call-limits").await["files"]
        .as_array()
        .unwrap()
        .is_empty());
}
