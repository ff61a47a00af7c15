//! Quarantine, as staff see it and as the rescan decides it. A file that came in while no
//! trusted clamd could scan it is kept sealed and seen by reviewers only; `crate::rescan`
//! scans it when clamd is back, and this records the verdict, signed again.

use upgate_gateway::control_link::ScanVerdict;
use upgate_gateway::sys::now;

use super::{Actor, Service, ServiceError};
use crate::model::{FileRecord, QuarantineState, Role};
use crate::repo::lists::Page;

impl Service {
    /// Whether `actor` may see `file` at all: a file in quarantine is for reviewers only,
    /// so to anyone else it does not exist.
    pub fn may_see(actor: &Actor, file: &FileRecord) -> bool {
        !file.in_quarantine() || actor.role == Role::Reviewer
    }

    /// A file of the actor's account that the actor may see; any other is "not found".
    pub async fn visible_file(&self, actor: &Actor, file_id: &str) -> Result<FileRecord, ServiceError> {
        let file = self.file_for(&actor.account_id, file_id).await?;
        if !Service::may_see(actor, &file) {
            return Err(ServiceError::NotFound("file"));
        }
        Ok(file)
    }

    /// A page of the account's files in quarantine, newest first (reviewers).
    pub async fn quarantine(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<FileRecord>, ServiceError> {
        Ok(self
            .repos
            .lists
            .quarantine_page(account_id, before, limit)
            .await?)
    }

    /// Files waiting for their scan, in every account, at most `limit`.
    pub async fn held_files(&self, limit: usize) -> Result<Vec<FileRecord>, ServiceError> {
        Ok(self.repos.quarantine.held(limit).await?)
    }

    /// Keeps `upgate_quarantine_held` at the number of files waiting in quarantine,
    /// counted every `every` (whether or not anything here rescans them: that is when the
    /// count matters most).
    pub async fn count_held(&self, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.repos.quarantine.held_count().await {
                Ok(held) => self
                    .metrics
                    .quarantine_held
                    .set(i64::try_from(held).unwrap_or(i64::MAX)),
                Err(e) => tracing::warn!(error = %e, "could not count the files held in quarantine"),
            }
        }
    }

    /// A reviewer releases (`release`) or blocks a file waiting in quarantine, or kept
    /// there as unscannable. Infected files stay where their scan put them.
    pub async fn review_quarantined(
        &self,
        actor: &Actor,
        file_id: &str,
        release: bool,
    ) -> Result<FileRecord, ServiceError> {
        if upgate_gateway::storage::ObjectKey::parse(file_id).is_none() {
            return Err(ServiceError::NotFound("file"));
        }
        self.repos
            .quarantine
            .review(&actor.account_id, file_id, release, &actor.token_id, now())
            .await?
            .ok_or(ServiceError::NotFound("file waiting in quarantine"))
    }

    /// Records the verdict of a held file's scan, with a statement signed over it; `None`
    /// if the file is no longer held.
    pub async fn decide_quarantined(
        &self,
        file: &FileRecord,
        verdict: ScanVerdict,
    ) -> Result<Option<FileRecord>, ServiceError> {
        let t = now();
        let link = self
            .repos
            .issue
            .account_link(&file.account_id, &file.link_id)
            .await?;
        // The statement says what the file is now: the same bytes, the new verdict.
        let attestation = link.map(|link| {
            let scanned = FileRecord {
                scan: verdict.clone(),
                ..file.clone()
            };
            let keys = self.keys.current();
            let key = keys
                .attestation
                .last()
                .expect("a key ring always has an attestation key");
            crate::attest::sign(key, &crate::attest::Stated::record(&scanned, &link), t)
        });
        let decided = self
            .repos
            .quarantine
            .decide(&file.id, verdict, attestation, t)
            .await?;
        if let Some(q) = decided.as_ref().and_then(|f| f.quarantine.as_ref()) {
            self.metrics
                .quarantine
                .with_label_values(&[q.state.as_str()])
                .inc();
            if q.state != QuarantineState::Released {
                tracing::warn!(file_id = %file.id, state = q.state.as_str(), "a quarantined file stays in quarantine");
            }
        }
        Ok(decided)
    }

    /// A rescan runs beside this control plane (it has a clamd): held files will be scanned.
    pub fn set_rescans(&self) {
        self.rescans.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn rescans(&self) -> bool {
        self.rescans.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use upgate_gateway::control_link::{ControlLink, NewFile, ScanStatus, ScanVerdict};

    use super::*;
    use crate::service::fixture::{fixture, Fixture};
    use crate::service::InProcess;

    fn verdict(status: &str, detail: Option<&str>) -> ScanVerdict {
        serde_json::from_value(json!({
            "status": status, "engine": "ClamAV 1.0.7/27484/Mon Dec 7 2026", "detail": detail, "scanned_at": 9
        }))
        .unwrap()
    }

    /// Commits a file that no clamd could scan, through the gateway's own path; its id.
    pub(crate) async fn held(f: &Fixture, call: &str) -> String {
        let link = f.link_on_call(call, "+14155550123").await;
        let gw: Arc<dyn ControlLink> = Arc::new(InProcess(f.svc.clone()));
        let claim = gw.claim(&link).await.unwrap().unwrap();
        let file = NewFile {
            verdict: ScanVerdict::unscanned("clamd is down".into(), 5),
            ..crate::repo::links_suite::file()
        };
        let id = file.file_id.clone();
        gw.commit(&claim, file).await.unwrap().unwrap();
        id
    }

    fn as_role(f: &Fixture, role: Role) -> Actor {
        Actor {
            role,
            ..f.actor.clone()
        }
    }

    async fn kinds(f: &Fixture) -> Vec<String> {
        let events = f
            .svc
            .events_after(&f.actor.account_id, None, 0, 100)
            .await
            .unwrap();
        events.iter().map(|e| e.event.kind()).collect()
    }

    #[tokio::test]
    async fn a_held_file_is_seen_by_reviewers_only_until_its_clean_scan_releases_it() {
        let f = fixture().await;
        let id = held(&f, "c").await;
        let reviewer = as_role(&f, Role::Reviewer);
        for role in [Role::Integration, Role::Viewer, Role::Admin] {
            let actor = as_role(&f, role);
            assert!(
                matches!(
                    f.svc.visible_file(&actor, &id).await,
                    Err(ServiceError::NotFound("file"))
                ),
                "{role:?}"
            );
            assert!(f.svc.attestation(&actor, &id).await.is_err(), "{role:?}");
        }
        let file = f.svc.visible_file(&reviewer, &id).await.unwrap();
        assert_eq!(file.scan.status(), ScanStatus::Unscanned);
        assert_eq!(file.quarantine.as_ref().unwrap().state, QuarantineState::Held);
        assert_eq!(file.quarantine.as_ref().unwrap().reason, "clamd is down");
        let listed = f
            .svc
            .quarantine(&f.actor.account_id, None, 500)
            .await
            .unwrap()
            .items;
        assert_eq!(
            listed.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
            [id.as_str()]
        );
        assert_eq!(f.svc.held_files(10).await.unwrap().len(), 1);
        assert_eq!(f.svc.repos.quarantine.held_count().await.unwrap(), 1);
        assert!(kinds(&f).await.contains(&"file_quarantined".to_string()));
        assert!(
            !kinds(&f).await.contains(&"file_stored".to_string()),
            "not announced as stored"
        );

        let released = f
            .svc
            .decide_quarantined(&file, verdict("clean", None))
            .await
            .unwrap()
            .unwrap();
        assert!(!released.in_quarantine());
        assert_eq!(
            released.quarantine.as_ref().unwrap().state,
            QuarantineState::Released
        );
        // Everyone sees it now, its statement says clean and verifies.
        let integration = as_role(&f, Role::Integration);
        assert_eq!(
            f.svc.visible_file(&integration, &id).await.unwrap().scan.status(),
            ScanStatus::Clean
        );
        let (_, statement) = f.svc.attestation(&integration, &id).await.unwrap();
        let stated: serde_json::Value = serde_json::from_str(&statement).unwrap();
        assert_eq!(stated["scan"]["status"], "clean");
        let a = f
            .svc
            .visible_file(&integration, &id)
            .await
            .unwrap()
            .attestation
            .unwrap();
        let keys = f.svc.keys.current();
        let key = keys.attestation.iter().find(|k| k.id == a.key_id).unwrap();
        use base64::Engine;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(&a.signature)
            .unwrap();
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key.public())
            .verify(statement.as_bytes(), &sig)
            .expect("signed again over the new verdict");
        assert!(f
            .svc
            .quarantine(&f.actor.account_id, None, 500)
            .await
            .unwrap()
            .items
            .is_empty());
        assert!(f.svc.held_files(10).await.unwrap().is_empty());
        assert_eq!(f.svc.repos.quarantine.held_count().await.unwrap(), 0);
        assert_eq!(kinds(&f).await.last().map(String::as_str), Some("file_released"));
        // A second verdict on the same file changes nothing.
        assert!(f
            .svc
            .decide_quarantined(&file, verdict("infected", Some("Eicar")))
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            f.svc.visible_file(&integration, &id).await.unwrap().scan.status(),
            ScanStatus::Clean
        );
    }

    #[tokio::test]
    async fn an_infected_or_unscannable_verdict_keeps_the_file_for_reviewers() {
        let f = fixture().await;
        let infected = held(&f, "c1").await;
        let unscannable = held(&f, "c2").await;
        let reviewer = as_role(&f, Role::Reviewer);
        let file = f.svc.visible_file(&reviewer, &infected).await.unwrap();
        f.svc
            .decide_quarantined(&file, verdict("infected", Some("Win.Test.EICAR_HDB-1")))
            .await
            .unwrap()
            .unwrap();
        let file = f.svc.visible_file(&reviewer, &unscannable).await.unwrap();
        f.svc
            .decide_quarantined(&file, verdict("not_scanned", Some("Heuristics.Limits.Exceeded")))
            .await
            .unwrap()
            .unwrap();
        let integration = as_role(&f, Role::Integration);
        for id in [&infected, &unscannable] {
            assert!(f.svc.visible_file(&integration, id).await.is_err());
        }
        let listed = f
            .svc
            .quarantine(&f.actor.account_id, None, 500)
            .await
            .unwrap()
            .items;
        let mut states: Vec<_> = listed
            .iter()
            .map(|f| (f.id.clone(), f.quarantine.as_ref().unwrap().state.as_str()))
            .collect();
        states.sort();
        let mut want = vec![
            (infected.clone(), "infected"),
            (unscannable.clone(), "unscannable"),
        ];
        want.sort();
        assert_eq!(states, want);
        assert!(
            f.svc.held_files(10).await.unwrap().is_empty(),
            "decided: not scanned again"
        );
        let kinds = kinds(&f).await;
        assert!(kinds.contains(&"file_infected".to_string()));
        assert!(kinds.contains(&"file_unscannable".to_string()));
        // Another account sees none of it.
        let other = f.svc.create_account("B", "pro").await.unwrap();
        assert!(f
            .svc
            .quarantine(&other.id, None, 500)
            .await
            .unwrap()
            .items
            .is_empty());
    }

    /// The events keep the spelling integrations read: the file's fields inside `detail`.
    #[test]
    fn file_events_spell_their_fields_inside_detail() {
        let verdict = ScanVerdict::unscanned("down".into(), 1);
        let arrived = crate::model::FileArrived {
            link_id: "l".into(),
            file_id: "f".into(),
            size: 3,
            kind: upgate_gateway::upload::sniff::Kind::Pdf,
            scan: verdict.clone(),
        };
        let value = serde_json::to_value(crate::model::Event::FileQuarantined(arrived)).unwrap();
        assert_eq!(value["kind"], "file_quarantined");
        assert_eq!(value["detail"]["type"], "application/pdf");
        assert_eq!(value["detail"]["scan"]["status"], "unscanned");
        let stored = r#"{"kind":"file_stored","detail":{"link_id":"l","file_id":"f","size":3,"type":"application/pdf","scan":{"status":"clean","engine":"ClamAV 1","detail":null,"scanned_at":1}}}"#;
        let parsed: crate::model::Event = serde_json::from_str(stored).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), stored);
    }

    #[tokio::test]
    async fn a_reviewer_releases_or_blocks_a_held_file_by_hand() {
        let f = fixture().await;
        let (released, blocked, infected) =
            (held(&f, "c1").await, held(&f, "c2").await, held(&f, "c3").await);
        let reviewer = Actor {
            token_id: "usr_00112233aabbccdd".into(),
            ..as_role(&f, Role::Reviewer)
        };
        let file = f.svc.visible_file(&reviewer, &infected).await.unwrap();
        f.svc
            .decide_quarantined(&file, verdict("infected", Some("Win.Test.EICAR_HDB-1")))
            .await
            .unwrap()
            .unwrap();
        let out = f
            .svc
            .review_quarantined(&reviewer, &released, true)
            .await
            .unwrap();
        let q = out.quarantine.as_ref().unwrap();
        assert_eq!(
            (q.state, q.decided_by.as_deref()),
            (QuarantineState::Released, Some("usr_00112233aabbccdd"))
        );
        assert_eq!(
            out.scan.status(),
            ScanStatus::Unscanned,
            "the verdict stays what it was"
        );
        let out = f
            .svc
            .review_quarantined(&reviewer, &blocked, false)
            .await
            .unwrap();
        assert_eq!(out.quarantine.unwrap().state, QuarantineState::Blocked);
        // Everyone sees the released file; the blocked one stays with reviewers, out of the
        // rescan; an infected one is not released by hand, and a decision is made once.
        let viewer = as_role(&f, Role::Viewer);
        assert!(f.svc.visible_file(&viewer, &released).await.is_ok());
        assert!(f.svc.visible_file(&viewer, &blocked).await.is_err());
        assert!(f.svc.held_files(10).await.unwrap().is_empty());
        for (id, release) in [(&infected, true), (&released, false), (&blocked, true)] {
            assert!(matches!(
                f.svc.review_quarantined(&reviewer, id, release).await,
                Err(ServiceError::NotFound(_))
            ));
        }
        let audit = f.svc.audit(&f.actor.account_id, 50).await.unwrap();
        for (action, id) in [("file.release", &released), ("file.block", &blocked)] {
            let e = audit.iter().find(|e| e.action == action).expect(action);
            assert_eq!((e.actor.as_str(), &e.target), ("usr_00112233aabbccdd", id));
        }
        assert!(kinds(&f).await.contains(&"file_released".to_string()));
    }
}
