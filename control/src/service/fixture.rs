//! A service on a fresh store, for the service's unit tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;

use super::{Actor, Service};
use crate::db::{DbError, Durable, Entry, Kv, Op, SledKv, Tree};
use crate::model::Role;

/// sled, counting the batches written and their bytes.
pub struct Metered {
    inner: SledKv,
    pub bytes: AtomicUsize,
    pub writes: AtomicUsize,
}

impl Kv for Metered {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        self.inner.get(tree, key)
    }
    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Entry>, DbError> {
        self.inner.scan_prefix(tree, prefix)
    }
    fn scan_rev_before(
        &self,
        tree: Tree,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, DbError> {
        self.inner.scan_rev_before(tree, prefix, before, limit)
    }
    fn scan_from(
        &self,
        tree: Tree,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, DbError> {
        self.inner.scan_from(tree, prefix, start, limit)
    }
    fn write(&self, ops: Vec<Op>) -> Result<(), DbError> {
        let n: usize = ops
            .iter()
            .map(|op| match op {
                Op::Put(_, k, v) => k.len() + v.len(),
                Op::Delete(_, k) => k.len(),
            })
            .sum();
        self.bytes.fetch_add(n, Ordering::SeqCst);
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write(ops)
    }
    fn durable(&self) -> Durable {
        self.inner.durable()
    }
    fn next_id(&self) -> Result<u64, DbError> {
        self.inner.next_id()
    }
}

/// A service on a fresh store of its own, with no account yet.
pub struct Store {
    pub svc: Service,
    pub db: Arc<Metered>,
    pub dir: tempfile::TempDir,
}

pub fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let config = upgate_config::Config::load(None, Some(dir.path())).unwrap();
    crate::keys::ensure_keys(dir.path()).unwrap();
    let db = Arc::new(Metered {
        inner: SledKv::open(&dir.path().join("meta")).unwrap(),
        bytes: AtomicUsize::new(0),
        writes: AtomicUsize::new(0),
    });
    let svc = Service::new(
        crate::repo::Repos::sled(db.clone()).unwrap(),
        config.plans.clone(),
        crate::keys::KeyRing::load(dir.path()).unwrap(),
        crate::sms::from_config(&config.sms, dir.path(), &config.gateway.public_url),
        config.gateway.public_url.clone(),
        Default::default(),
        upgate_config::SmsLimits {
            per_number_per_hour: 10_000,
            per_account_per_hour: 10_000,
        },
    );
    Store { svc, db, dir }
}

/// A store with an account, an integration actor and an assistant that takes uploads.
pub struct Fixture {
    pub svc: Arc<Service>,
    pub db: Arc<Metered>,
    pub actor: Actor,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// A call from `number` on the fixture's assistant, and a link issued for it.
    pub async fn link_on_call(&self, call: &str, number: &str) -> upgate_gateway::token::LinkId {
        let input = serde_json::from_value(json!({"assistant_id": "asst", "caller_number": number})).unwrap();
        self.svc.put_call(&self.actor, call, input).await.unwrap();
        let issued = self
            .svc
            .issue_link(self.actor.clone(), call.into(), None)
            .await
            .unwrap();
        issued.link.id.parse().unwrap()
    }
}

pub async fn fixture() -> Fixture {
    let Store { svc, db, dir } = store();
    let account = svc.create_account("A", "pro").await.unwrap();
    let actor = Actor {
        account_id: account.id,
        role: Role::Integration,
        token_id: "tok_test".into(),
        expires_at: None,
    };
    let settings = serde_json::from_value(json!({
        "enabled": true,
        "trigger": "When the caller has photos",
        "max_files": 3,
    }))
    .unwrap();
    svc.put_assistant(&actor, "asst", settings).await.unwrap();
    Fixture {
        svc: Arc::new(svc),
        db,
        actor,
        _dir: dir,
    }
}
