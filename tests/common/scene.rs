//! A ready account: tokens for each role and an assistant with file upload on.

use serde_json::{json, Value};

use super::upgate::{Api, Upgate};

pub struct Scene {
    pub admin: Api,
    pub integration: Api,
    pub reviewer: Api,
}

pub fn settings(max_files: u32, max_file_bytes: u64) -> Value {
    json!({"file_upload": {
        "enabled": true,
        "trigger": "When the caller has the documents ready",
        "message": "Please upload your documents here",
        "allowed_types": ["application/pdf", "image/jpeg"],
        "max_file_bytes": max_file_bytes,
        "max_files": max_files,
        "link_ttl_seconds": 600,
    }})
}

pub async fn scene(up: &Upgate, settings: Value) -> Scene {
    let acc = up.create_account("Scene", "pro");
    let scene = Scene {
        admin: Api::new(&up.control, &up.create_token(&acc, "admin")),
        integration: Api::new(&up.control, &up.create_token(&acc, "integration")),
        reviewer: Api::new(&up.control, &up.create_token(&acc, "reviewer")),
    };
    let (status, body) = scene.admin.put("/v1/assistants/desk", settings).await;
    assert!(status.is_success(), "{body}");
    scene
}

impl Scene {
    /// A new call and a link for it; returns the link's URL and id.
    pub async fn link(&self, call_id: &str) -> (String, String) {
        let (status, body) = self
            .integration
            .put(
                &format!("/v1/calls/{call_id}"),
                json!({"assistant_id": "desk", "caller_number": "+14155550199"}),
            )
            .await;
        assert!(status.is_success(), "{body}");
        let (status, link) = self
            .integration
            .post(&format!("/v1/calls/{call_id}/upload-links"), None)
            .await;
        assert_eq!(status, 201, "{link}");
        (
            link["url"].as_str().unwrap().to_string(),
            link["id"].as_str().unwrap().to_string(),
        )
    }
}
