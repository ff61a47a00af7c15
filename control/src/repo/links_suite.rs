//! The [`LinkRepo`] contract, engine-neutral: state is seeded through a hook each engine
//! provides, time is passed in (no sleeping), and results are read back through the trait.
//! `sled_links_keep_the_contract` runs it on the embedded store; a PostgreSQL engine would
//! add one line like it.

use std::sync::Arc;

use async_trait::async_trait;
use upgate_gateway::control_link::{Claim, LinkState, NewFile, Refusal, RefusalCode, ScanVerdict};
use upgate_gateway::storage::ObjectKey;
use upgate_gateway::token::LinkId;
use upgate_gateway::upload::sniff::Kind;

use super::LinkRepo;
use crate::model::{Call, Link};

/// How a suite run puts a call and its link in place (engines differ in how).
#[async_trait]
pub trait Seed: Send + Sync {
    async fn seed(&self, call: Call, link: Link);
}

const T0: u64 = 1_000_000;

pub fn ids(n: u8) -> (LinkId, Link, Call) {
    let id = LinkId([n; 12]);
    let link = Link {
        id: id.to_string(),
        account_id: "acc_0000000000000001".into(),
        call_id: format!("call-{n}"),
        state: LinkState::Active,
        key_id: 1,
        created_at: T0,
        expires_at: T0 + 3600,
        message: "Send it".into(),
        allowed_types: vec!["application/pdf".into()],
        max_file_bytes: 1000,
        max_files: 2,
        files_received: 0,
        ended_at: None,
        opened_at: None,
        leases: Vec::new(),
    };
    let call = Call {
        account_id: link.account_id.clone(),
        id: link.call_id.clone(),
        assistant_id: "asst".into(),
        caller_number: "+14155550123".into(),
        created_at: T0,
        events_next: 0,
        events_dropped: 0,
    };
    (id, link, call)
}

fn claim(id: LinkId, lease: u64, ttl: u64) -> Claim {
    Claim {
        link_id: id,
        lease,
        ttl_secs: ttl,
        recipient: None,
    }
}

pub fn file() -> NewFile {
    NewFile {
        file_id: ObjectKey::random().as_str().to_string(),
        display_name: "a.pdf".into(),
        kind: Kind::Pdf,
        size: 10,
        sha256: "00".repeat(32),
        verdict: ScanVerdict::not_scanned(None, "off".into(), T0),
        key_id: 1,
        received_at: T0,
        previews: false,
    }
}

/// Every check, each on a link of its own.
pub async fn run(repo: Arc<dyn LinkRepo>, seed: &dyn Seed) {
    unknown_links_are_none(&*repo).await;
    let mut n = 1;
    let mut fresh = || {
        n += 1;
        ids(n)
    };

    // Claims hold the quota; an ended lease frees its slot; release is idempotent.
    let (id, link, call) = fresh();
    seed.seed(call, link).await;
    let a = claim(id, 1, 60);
    let b = claim(id, 2, 60);
    assert_eq!(repo.claim(&a, T0).await.unwrap(), Some(Ok(())));
    assert_eq!(repo.claim(&b, T0).await.unwrap(), Some(Ok(())));
    assert_eq!(
        repo.claim(&claim(id, 3, 60), T0).await.unwrap(),
        Some(Err(LinkState::Used))
    );
    assert_eq!(repo.uploads_in_flight(&id.to_string(), T0).await.unwrap(), 2);
    // b is renewed at T0+50 (to T0+110); a is not, and ends at T0+60.
    assert!(repo.renew(&b, T0 + 50).await.unwrap());
    assert_eq!(repo.uploads_in_flight(&id.to_string(), T0 + 60).await.unwrap(), 1);
    assert!(
        !repo.renew(&a, T0 + 60).await.unwrap(),
        "an ended lease is not renewed"
    );
    assert_eq!(
        repo.claim(&claim(id, 4, 60), T0 + 61).await.unwrap(),
        Some(Ok(()))
    );
    repo.release(&claim(id, 4, 60)).await.unwrap();
    repo.release(&claim(id, 4, 60)).await.unwrap();
    assert!(!repo.renew(&claim(id, 4, 60), T0 + 62).await.unwrap());
    assert_eq!(repo.uploads_in_flight(&id.to_string(), T0 + 62).await.unwrap(), 1);

    // A stored file ends its lease and counts; the last slot ends the link as used.
    assert_eq!(
        repo.record_file(&b, file(), None, T0 + 70).await.unwrap(),
        Some(Ok(LinkState::Active))
    );
    assert_eq!(repo.uploads_in_flight(&id.to_string(), T0 + 70).await.unwrap(), 0);
    let c = claim(id, 5, 60);
    assert_eq!(repo.claim(&c, T0 + 71).await.unwrap(), Some(Ok(())));
    assert_eq!(
        repo.record_file(&c, file(), None, T0 + 72).await.unwrap(),
        Some(Ok(LinkState::Used))
    );
    let stored = repo.link(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.files_received, stored.state, stored.ended_at),
        (2, LinkState::Used, Some(T0 + 72))
    );
    assert_eq!(
        repo.claim(&claim(id, 6, 60), T0 + 73).await.unwrap(),
        Some(Err(LinkState::Used))
    );
    assert_eq!(
        repo.record_file(&a, file(), None, T0 + 74).await.unwrap(),
        Some(Err(LinkState::Used))
    );

    // A commit whose lease ended records only if there is room beside the live leases.
    let (id, link, call) = fresh();
    seed.seed(call, link).await;
    let late = claim(id, 1, 10);
    repo.claim(&late, T0).await.unwrap().unwrap().unwrap();
    assert_eq!(
        repo.record_file(&late, file(), None, T0 + 20).await.unwrap(),
        Some(Ok(LinkState::Active))
    );
    let later = claim(id, 2, 10);
    repo.claim(&later, T0 + 21).await.unwrap().unwrap().unwrap();
    repo.claim(&claim(id, 3, 100), T0 + 40)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        repo.record_file(&later, file(), None, T0 + 41).await.unwrap(),
        Some(Err(LinkState::Used))
    );
    assert_eq!(repo.link(&id).await.unwrap().unwrap().files_received, 1);

    // An expired link takes no claim and no file, and finishing leaves it expired.
    let (id, link, call) = fresh();
    let expires = link.expires_at;
    seed.seed(call, link).await;
    let held = claim(id, 1, 60);
    repo.claim(&held, expires - 30).await.unwrap().unwrap().unwrap();
    assert_eq!(
        repo.claim(&claim(id, 2, 60), expires).await.unwrap(),
        Some(Err(LinkState::Expired))
    );
    assert!(!repo.renew(&held, expires + 1).await.unwrap());
    assert_eq!(
        repo.record_file(&held, file(), None, expires + 1).await.unwrap(),
        Some(Err(LinkState::Expired))
    );
    assert_eq!(
        repo.finish(&id, expires + 1).await.unwrap(),
        Some(LinkState::Expired)
    );

    // Finishing an active link uses it, once; a refusal is recorded on a known link.
    let (id, link, call) = fresh();
    seed.seed(call, link).await;
    let refusal = Refusal {
        code: RefusalCode::Infected,
        display_name: "x.pdf".into(),
        size: 1,
        verdict: None,
        message: String::new(),
        lang: String::new(),
    };
    assert_eq!(repo.record_refusal(&id, refusal, T0).await.unwrap(), Some(()));
    assert_eq!(repo.finish(&id, T0 + 1).await.unwrap(), Some(LinkState::Used));
    assert_eq!(repo.finish(&id, T0 + 2).await.unwrap(), Some(LinkState::Used));
    assert_eq!(repo.link(&id).await.unwrap().unwrap().ended_at, Some(T0 + 1));
    assert_eq!(
        repo.claim(&claim(id, 1, 60), T0 + 3).await.unwrap(),
        Some(Err(LinkState::Used))
    );
}

async fn unknown_links_are_none(repo: &dyn LinkRepo) {
    let (id, _, _) = ids(0);
    let c = claim(id, 1, 60);
    assert!(repo.link(&id).await.unwrap().is_none());
    assert_eq!(repo.claim(&c, T0).await.unwrap(), None);
    assert!(!repo.renew(&c, T0).await.unwrap());
    repo.release(&c).await.unwrap();
    assert_eq!(repo.record_file(&c, file(), None, T0).await.unwrap(), None);
    let refusal = Refusal {
        code: RefusalCode::EmptyFile,
        display_name: String::new(),
        size: 0,
        verdict: None,
        message: String::new(),
        lang: String::new(),
    };
    assert_eq!(repo.record_refusal(&id, refusal, T0).await.unwrap(), None);
    assert_eq!(repo.finish(&id, T0).await.unwrap(), None);
    assert_eq!(repo.uploads_in_flight(&id.to_string(), T0).await.unwrap(), 0);
}

/// The sled engine's seeding, and its runs of the suites.
mod sled {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::Seed;
    use crate::db::{Kv, SledKv, Tree};
    use crate::model::{Call, Link};
    use crate::repo::sled_keys::{put, scoped};
    use crate::repo::SledLinks;

    struct SledSeed(Arc<dyn Kv>);

    #[async_trait]
    impl Seed for SledSeed {
        async fn seed(&self, call: Call, link: Link) {
            self.0
                .apply(vec![
                    put(Tree::Calls, scoped(&call.account_id, &call.id), &call),
                    put(Tree::Links, link.id.as_bytes(), &link),
                ])
                .unwrap();
        }
    }

    #[tokio::test]
    async fn sled_links_keep_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let db: Arc<dyn Kv> = Arc::new(SledKv::open(&dir.path().join("meta")).unwrap());
        let repo = Arc::new(SledLinks::new(db.clone(), Arc::new(Mutex::new(()))));
        super::run(repo, &SledSeed(db)).await;
    }

    #[tokio::test]
    async fn sled_files_keep_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let db: Arc<dyn Kv> = Arc::new(SledKv::open(&dir.path().join("meta")).unwrap());
        let links = Arc::new(SledLinks::new(db.clone(), Arc::new(Mutex::new(()))));
        let files = Arc::new(crate::repo::SledFiles::new(db.clone()));
        let lists = Arc::new(crate::repo::SledStore::new(db.clone(), Arc::new(Mutex::new(()))));
        crate::repo::files_suite::run(files, links, lists, &SledSeed(db)).await;
    }
}
