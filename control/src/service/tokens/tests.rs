use std::sync::atomic::Ordering;

use super::*;
use crate::api::views::token_json;

/// The stable code the API would answer with.
fn code(e: ServiceError) -> &'static str {
    crate::problem::Problem::from(e).code
}
use crate::db::Kv;

use crate::db::Tree;
use crate::repo::sled_keys::put;
use crate::service::fixture::{store as fixture, Store as Fixture};

async fn rewrite(f: &Fixture, token_id: &str, account: &str, change: impl FnOnce(&mut ApiToken)) {
    let mut record = f.svc.token(account, token_id).await.unwrap();
    change(&mut record);
    f.db.apply(vec![put(Tree::Tokens, record.hash.as_bytes(), &record)])
        .unwrap();
}

fn actor(r: Result<Result<Actor, Refused>, ServiceError>) -> Result<Actor, Refused> {
    r.expect("no store failure")
}

#[tokio::test]
async fn a_token_carries_its_creation_name_and_expiry() {
    let f = fixture();
    let acc = f.svc.create_account("A", "pro").await.unwrap().id;
    let new = NewToken {
        name: Some("  voice platform, prod ".into()),
        expires_in: Some(30 * 86_400),
        not_after: None,
    };
    let (record, secret) = f
        .svc
        .create_token(&acc, Role::Integration, new, "operator")
        .await
        .unwrap();
    assert_eq!(record.name.as_deref(), Some("voice platform, prod"));
    assert_eq!(record.expires_at, Some(record.created_at + 30 * 86_400));
    let view = token_json(&record, now());
    assert_eq!(view["status"], "active");
    for member in ["token", "hash", "secret"] {
        assert!(view.get(member).is_none(), "{member} in {view}");
    }
    assert!(!view.to_string().contains(&secret));
    assert!(!view.to_string().contains(&record.hash));
}

#[tokio::test]
async fn names_and_expiries_out_of_bounds_are_refused() {
    let f = fixture();
    let acc = f.svc.create_account("A", "pro").await.unwrap().id;
    let bad_names = [
        String::new(),
        "   ".into(),
        "x".repeat(NAME_MAX_CHARS + 1),
        "prod\u{202E}dorp".into(),
        "a\u{200B}b".into(),
        "line\nbreak".into(),
        "tag\u{E0041}".into(),
    ];
    for name in bad_names {
        let new = NewToken {
            name: Some(name.clone()),
            ..NewToken::default()
        };
        let err = f
            .svc
            .create_token(&acc, Role::Viewer, new, "operator")
            .await
            .unwrap_err();
        assert_eq!(code(err), "invalid_name", "{name:?}");
    }
    for secs in [0, EXPIRES_IN_MAX + 1, u64::MAX] {
        let new = NewToken {
            expires_in: Some(secs),
            ..NewToken::default()
        };
        let err = f
            .svc
            .create_token(&acc, Role::Viewer, new, "operator")
            .await
            .unwrap_err();
        assert_eq!(code(err), "invalid_expiry", "{secs}");
    }
    assert!(
        f.svc.tokens(&acc).await.unwrap().is_empty(),
        "nothing refused was kept"
    );
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused_at_once() {
    let f = fixture();
    let acc = f.svc.create_account("A", "pro").await.unwrap().id;
    let (a, secret_a) = f
        .svc
        .create_token(&acc, Role::Admin, NewToken::default(), "operator")
        .await
        .unwrap();
    let (b, secret_b) = f
        .svc
        .create_token(&acc, Role::Viewer, NewToken::default(), "operator")
        .await
        .unwrap();
    assert!(actor(f.svc.authenticate(&secret_a).await).is_ok());
    assert!(actor(f.svc.authenticate(&secret_b).await).is_ok());

    let revoked = f.svc.revoke_token("tok_someone", &acc, &a.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        actor(f.svc.authenticate(&secret_a).await).unwrap_err(),
        Refused::Revoked {
            token_id: a.id.clone(),
            account_id: acc.clone()
        }
    );

    // An expiry one second ago, and one exactly now: both refused.
    for past in [1, 0] {
        rewrite(&f, &b.id, &acc, |r| r.expires_at = Some(now() - past)).await;
        assert_eq!(
            actor(f.svc.authenticate(&secret_b).await).unwrap_err(),
            Refused::Expired {
                token_id: b.id.clone(),
                account_id: acc.clone()
            }
        );
    }
    rewrite(&f, &b.id, &acc, |r| {
        r.expires_at = Some(now() - 10);
        r.revoked_at = Some(now());
    })
    .await;
    assert!(matches!(
        actor(f.svc.authenticate(&secret_b).await),
        Err(Refused::Revoked { .. })
    ));

    let statuses: Vec<_> = f
        .svc
        .tokens(&acc)
        .await
        .unwrap()
        .iter()
        .map(|t| t.status_at(now()))
        .collect();
    assert_eq!(statuses, [TokenStatus::Revoked, TokenStatus::Revoked]);
}

#[tokio::test]
async fn revoking_twice_changes_nothing_and_audits_once() {
    let f = fixture();
    let acc = f.svc.create_account("A", "pro").await.unwrap().id;
    let (t, _) = f
        .svc
        .create_token(&acc, Role::Viewer, NewToken::default(), "operator")
        .await
        .unwrap();
    let first = f.svc.revoke_token("operator", &acc, &t.id).await.unwrap();
    let again = f.svc.revoke_token("operator", &acc, &t.id).await.unwrap();
    assert_eq!(first.revoked_at, again.revoked_at);
    let revokes = f
        .svc
        .audit(&acc, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "token.revoke")
        .count();
    assert_eq!(revokes, 1);
}

#[tokio::test]
async fn another_account_s_token_is_not_found_whatever_the_id() {
    let f = fixture();
    let a = f.svc.create_account("A", "pro").await.unwrap().id;
    let b = f.svc.create_account("B", "pro").await.unwrap().id;
    let (ta, secret) = f
        .svc
        .create_token(&a, Role::Admin, NewToken::default(), "operator")
        .await
        .unwrap();
    f.svc
        .create_token(&b, Role::Admin, NewToken::default(), "operator")
        .await
        .unwrap();
    assert_eq!(code(f.svc.token(&b, &ta.id).await.unwrap_err()), "not_found");
    assert_eq!(
        code(f.svc.revoke_token("x", &b, &ta.id).await.unwrap_err()),
        "not_found"
    );
    for bad in [
        "",
        "tok_",
        "tok_../../x",
        "../tok",
        &format!("{}/", ta.id),
        &ta.hash,
    ] {
        assert_eq!(
            code(f.svc.token(&a, bad).await.unwrap_err()),
            "not_found",
            "{bad}"
        );
    }
    let listed = f.svc.tokens(&b).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed.iter().all(|t| t.account_id == b));
    assert!(
        actor(f.svc.authenticate(&secret).await).is_ok(),
        "B's attempts left A's token alone"
    );
}

#[tokio::test]
async fn the_operator_revokes_by_id_alone() {
    let f = fixture();
    let a = f.svc.create_account("A", "pro").await.unwrap().id;
    let (t, secret) = f
        .svc
        .create_token(&a, Role::Reviewer, NewToken::default(), "operator")
        .await
        .unwrap();
    let revoked = f.svc.revoke_token_by_operator(&t.id).await.unwrap();
    assert_eq!(revoked.account_id, a);
    assert!(actor(f.svc.authenticate(&secret).await).is_err());
    assert_eq!(
        code(
            f.svc
                .revoke_token_by_operator("tok_0000000000000000")
                .await
                .unwrap_err()
        ),
        "not_found"
    );
}

#[tokio::test]
async fn last_used_is_written_at_most_once_a_minute() {
    assert!(last_used_due(None, 1_000));
    assert!(!last_used_due(Some(1_000), 1_000));
    assert!(!last_used_due(Some(1_000), 1_000 + LAST_USED_EVERY - 1));
    assert!(last_used_due(Some(1_000), 1_000 + LAST_USED_EVERY));
    assert!(!last_used_due(Some(u64::MAX), 0), "no overflow");

    let f = fixture();
    let acc = f.svc.create_account("A", "pro").await.unwrap().id;
    let (t, secret) = f
        .svc
        .create_token(&acc, Role::Viewer, NewToken::default(), "operator")
        .await
        .unwrap();
    assert_eq!(f.svc.token(&acc, &t.id).await.unwrap().last_used_at, None);
    let before = f.db.writes.load(Ordering::SeqCst);
    for _ in 0..50 {
        actor(f.svc.authenticate(&secret).await).unwrap();
    }
    assert_eq!(
        f.db.writes.load(Ordering::SeqCst) - before,
        1,
        "fifty requests, one write"
    );
    let used = f.svc.token(&acc, &t.id).await.unwrap().last_used_at.unwrap();
    assert!(now() - used < 5);

    // A minute later the next request writes again.
    rewrite(&f, &t.id, &acc, |r| r.last_used_at = Some(used - LAST_USED_EVERY)).await;
    let before = f.db.writes.load(Ordering::SeqCst);
    actor(f.svc.authenticate(&secret).await).unwrap();
    actor(f.svc.authenticate(&secret).await).unwrap();
    assert_eq!(f.db.writes.load(Ordering::SeqCst) - before, 1);
    assert!(f.svc.token(&acc, &t.id).await.unwrap().last_used_at.unwrap() >= used);
}

#[tokio::test]
async fn tokens_from_before_the_index_are_indexed_at_start() {
    let f = fixture();
    let acc = f.svc.create_account("A", "pro").await.unwrap().id;
    // A record as an older upgate wrote it: no name, expiry, use or index entry.
    let old = serde_json::json!({
        "id": "tok_00000000000000aa",
        "account_id": acc,
        "role": "admin",
        "hash": "ab".repeat(32),
        "created_at": 1,
    });
    f.db.apply(vec![crate::db::Op::Put(
        Tree::Tokens,
        "ab".repeat(32).into_bytes(),
        old.to_string().into_bytes(),
    )])
    .unwrap();
    assert!(f.svc.tokens(&acc).await.unwrap().is_empty());
    assert_eq!(
        crate::repo::SledStore::new(f.db.clone(), Default::default())
            .index_tokens()
            .unwrap(),
        1
    );
    assert_eq!(
        crate::repo::SledStore::new(f.db.clone(), Default::default())
            .index_tokens()
            .unwrap(),
        0,
        "once"
    );
    let listed = f.svc.tokens(&acc).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status_at(now()), TokenStatus::Active);
    f.svc
        .revoke_token("operator", &acc, "tok_00000000000000aa")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_token_made_by_an_expiring_token_expires_no_later() {
    let f = fixture();
    let acc = f.svc.create_account("A", "pro").await.unwrap().id;
    let limit = now() + 3600;
    let within = |expires_in| NewToken {
        expires_in,
        not_after: Some(limit),
        ..NewToken::default()
    };
    let (t, _) = f
        .svc
        .create_token(&acc, Role::Viewer, within(None), "tok_x")
        .await
        .unwrap();
    assert_eq!(t.expires_at, Some(limit), "inherits the creator's expiry");
    let (t, _) = f
        .svc
        .create_token(&acc, Role::Viewer, within(Some(60)), "tok_x")
        .await
        .unwrap();
    assert!(t.expires_at.unwrap() <= limit);
    for longer in [3700, 86_400, EXPIRES_IN_MAX] {
        let err = f
            .svc
            .create_token(&acc, Role::Viewer, within(Some(longer)), "tok_x")
            .await
            .unwrap_err();
        assert_eq!(code(err), "invalid_expiry", "{longer}");
    }
}
