//! The gateway's resumable uploads against the in-process control link: an upload nobody
//! resumes is dropped at its expiry, its spool deleted and its slot given back to the link.

use std::str::FromStr;
use std::sync::Arc;

use serde_json::json;
use upgate_gateway::control_link::ControlLink;
use upgate_gateway::disk::DiskWatch;
use upgate_gateway::keys::GatewayKeys;
use upgate_gateway::token::LinkId;
use upgate_gateway::tus::{TusUpload, TusUploads};
use upgate_gateway::upload::sniff::Kind;
use upgate_gateway::upload::{Limits, Session};

use crate::service::fixture::fixture;
use crate::service::InProcess;

fn spooled(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[tokio::test]
async fn an_abandoned_upload_is_dropped_at_its_expiry_with_its_spool_and_its_slot() {
    let f = fixture().await;
    let input =
        serde_json::from_value(json!({"assistant_id": "asst", "caller_number": "+14155550123"})).unwrap();
    f.svc.put_call(&f.actor, "c", input).await.unwrap();
    let issued = f.svc.issue_link(f.actor.clone(), "c".into(), None).await.unwrap();
    let link_id = LinkId::from_str(&issued.link.id).unwrap();
    let gw: Arc<dyn ControlLink> = Arc::new(InProcess(f.svc.clone()));
    let keys = GatewayKeys::from_set(&f.svc.gateway_key_set()).unwrap();

    let spool = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_file_bytes: 10 << 20,
        allowed: vec![Kind::Pdf],
        decoders: Arc::new(tokio::sync::Semaphore::new(1)),
    };
    let room = DiskWatch::new(spool.path(), 0).reserve(10 << 20).unwrap();
    let mut session = Session::new("a.pdf".into(), limits, spool.path(), room, keys.storage);
    let mut head = b"%PDF-1.4\n".to_vec();
    head.resize(2 << 20, b'%');
    session.feed(&head).await.unwrap();
    assert_eq!(spooled(spool.path()), 1, "the first bytes are in the spool");

    let claim = gw.claim(&link_id).await.unwrap().unwrap();
    let uploads = TusUploads::default();
    let expires_at = 5_000_000_000;
    let upload = TusUpload::new(
        link_id,
        3 << 20,
        session,
        keys.storage.key_id,
        claim,
        gw.clone(),
        expires_at,
    );
    uploads.insert(upload).unwrap();
    let t = upgate_gateway::sys::now();
    assert_eq!(f.svc.uploads_in_flight(&issued.link.id, t).await.unwrap(), 1);

    assert_eq!(
        uploads.drop_expired(&gw, expires_at - 1),
        0,
        "not before its time"
    );
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads.drop_expired(&gw, expires_at), 1);
    assert!(uploads.is_empty());
    // The release runs in the background: wait for it, bounded.
    for _ in 0..100 {
        if f.svc.uploads_in_flight(&issued.link.id, t).await.unwrap() == 0 && spooled(spool.path()) == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!(
        "slot or spool kept: {} in flight, {} spooled",
        f.svc.uploads_in_flight(&issued.link.id, t).await.unwrap(),
        spooled(spool.path())
    );
}
