use std::net::IpAddr;

use super::*;
use crate::model::UserChange;
use crate::service::fixture::fixture;

const PASSWORD: &str = "a long enough password";

fn attempt<'a>(email: &'a str, password: &'a str, code: &'a str) -> SignInAttempt<'a> {
    SignInAttempt {
        email,
        password,
        code,
        address: "192.0.2.9".parse::<IpAddr>().unwrap(),
        agent: "test",
    }
}

fn link_token(url: &str) -> &str {
    url.split_once("token=").unwrap().1
}

/// A user the operator created, who followed their link and chose `PASSWORD`.
async fn signed_up(f: &crate::service::fixture::Fixture, email: &str, role: Role) -> (NewUser, SignedIn) {
    let new = f
        .svc
        .create_user(&f.actor.account_id, email, role, None)
        .await
        .unwrap();
    let signed = f
        .svc
        .redeem_signin_link(link_token(&new.signin_url), PASSWORD, "ua")
        .await
        .unwrap();
    (new, signed)
}

#[tokio::test]
async fn a_sign_in_link_sets_the_password_once_and_signs_in() {
    let f = fixture().await;
    let new = f
        .svc
        .create_user(&f.actor.account_id, " Ana@Example.COM ", Role::Admin, None)
        .await
        .unwrap();
    assert_eq!(new.user.email, "ana@example.com");
    let token = link_token(&new.signin_url);
    // A weak password is refused and leaves the link usable.
    let weak = f.svc.redeem_signin_link(token, "short", "ua").await;
    assert!(matches!(
        weak,
        Err(ServiceError::User(UserError::WeakPassword(_)))
    ));
    let signed = f.svc.redeem_signin_link(token, PASSWORD, "ua").await.unwrap();
    assert_eq!(signed.user.id, new.user.id);
    let (session, user) = f.svc.session(&signed.secret).await.unwrap().unwrap();
    assert_eq!((session.id, user.role), (signed.session.id, Role::Admin));
    let again = f.svc.redeem_signin_link(token, PASSWORD, "ua").await;
    assert!(matches!(
        again,
        Err(ServiceError::User(UserError::SigninLinkInvalid))
    ));
    // The email is taken now, in any case.
    let dup = f
        .svc
        .create_user(&f.actor.account_id, "ANA@example.com", Role::Viewer, None)
        .await;
    assert!(matches!(dup, Err(ServiceError::User(UserError::EmailTaken))));
}

#[tokio::test]
async fn sign_in_takes_the_right_password_only_and_audits_with_the_user() {
    let f = fixture().await;
    let (new, _) = signed_up(&f, "bo@example.com", Role::Viewer).await;
    let wrong = f
        .svc
        .sign_in(attempt("bo@example.com", "not the password", ""))
        .await;
    assert!(matches!(wrong, Err(ServiceError::User(UserError::SignInRefused))));
    let unknown = f.svc.sign_in(attempt("nobody@example.com", PASSWORD, "")).await;
    assert!(matches!(
        unknown,
        Err(ServiceError::User(UserError::SignInRefused))
    ));
    let signed = f
        .svc
        .sign_in(attempt("BO@example.com", PASSWORD, ""))
        .await
        .unwrap();
    // The failures' entries are written beside the answers (not before): wait for them.
    let mut audit = Vec::new();
    for _ in 0..100 {
        audit = f.svc.audit(&f.actor.account_id, 20).await.unwrap();
        if audit.iter().any(|e| e.action == "user.sign_in_failed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert!(
        actions.contains(&("user.sign_in_failed", new.user.id.as_str())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("user.sign_in", new.user.id.as_str())),
        "{actions:?}"
    );
    // Signing out ends the session at once.
    f.svc
        .end_session(&signed.user, &signed.session.id, true)
        .await
        .unwrap();
    assert!(f.svc.session(&signed.secret).await.unwrap().is_none());
    let audit = f.svc.audit(&f.actor.account_id, 1).await.unwrap();
    assert_eq!(audit[0].action, "user.sign_out");
}

#[tokio::test]
async fn failures_past_the_budget_are_refused_without_a_check() {
    let f = fixture().await;
    signed_up(&f, "cy@example.com", Role::Viewer).await;
    for _ in 0..FAILURES_PER_USER {
        let _ = f
            .svc
            .sign_in(attempt("cy@example.com", "wrong password!", ""))
            .await;
    }
    // Even the right password is refused now: the budget is spent.
    let blocked = f.svc.sign_in(attempt("cy@example.com", PASSWORD, "")).await;
    assert!(matches!(blocked, Err(ServiceError::User(UserError::RateLimited { wait })) if wait > 0));
}

#[tokio::test]
async fn a_second_factor_needs_a_fresh_code() {
    let f = fixture().await;
    let (new, signed) = signed_up(&f, "di@example.com", Role::Reviewer).await;
    assert!(signed.user.must_enrol_totp());
    let secret = f.svc.totp_begin(&signed.user).await.unwrap();
    let right: u32 = totp::code_at(&secret, now()).parse().unwrap();
    let wrong = format!("{:06}", (right + 500_000) % 1_000_000);
    assert!(f.svc.totp_confirm(&signed.user, &wrong).await.is_err());
    f.svc
        .totp_confirm(&signed.user, &totp::code_at(&secret, now()))
        .await
        .unwrap();
    let user = f.svc.user(&f.actor.account_id, &new.user.id).await.unwrap();
    assert!(!user.must_enrol_totp());
    let no_code = f.svc.sign_in(attempt("di@example.com", PASSWORD, "")).await;
    assert!(matches!(no_code, Err(ServiceError::User(UserError::CodeNeeded))));
    // The code that confirmed enrolment was used: it does not sign in again.
    let reused = f
        .svc
        .sign_in(attempt(
            "di@example.com",
            PASSWORD,
            &totp::code_at(&secret, now()),
        ))
        .await;
    assert!(matches!(reused, Err(ServiceError::User(UserError::CodeWrong))));
}

#[tokio::test]
async fn sessions_end_when_idle_or_at_their_absolute_end() {
    let s = Session {
        id: "ses_0".into(),
        account_id: "acc".into(),
        user_id: "usr".into(),
        created_at: 1000,
        last_seen_at: 1000,
        expires_at: 1000 + SESSION_MAX_SECONDS,
        revoked_at: None,
        csrf: String::new(),
        agent: String::new(),
    };
    assert!(s.active_at(1000 + SESSION_IDLE_SECONDS - 1, SESSION_IDLE_SECONDS));
    assert!(!s.active_at(1000 + SESSION_IDLE_SECONDS, SESSION_IDLE_SECONDS));
    let busy = Session {
        last_seen_at: 1000 + SESSION_MAX_SECONDS - 10,
        ..s.clone()
    };
    assert!(!busy.active_at(1000 + SESSION_MAX_SECONDS, SESSION_IDLE_SECONDS));
    let revoked = Session {
        revoked_at: Some(1001),
        ..s
    };
    assert!(!revoked.active_at(1002, SESSION_IDLE_SECONDS));
}

#[tokio::test]
async fn admins_cannot_grant_reviewer_and_emails_are_checked() {
    let f = fixture().await;
    let admin = Actor {
        role: Role::Admin,
        ..f.actor.clone()
    };
    let r = f
        .svc
        .create_user(
            &f.actor.account_id,
            "ed@example.com",
            Role::Reviewer,
            Some(&admin),
        )
        .await;
    assert!(matches!(
        r,
        Err(ServiceError::User(UserError::ReviewerByOperator))
    ));
    for bad in [
        "",
        "no-at",
        "a@b",
        "a b@example.com",
        "a@@example.com",
        "a@example.com\u{200b}",
    ] {
        assert!(normalize_email(bad).is_err(), "{bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tries_sent_at_once_do_not_pass_the_budget() {
    let f = fixture().await;
    signed_up(&f, "fy@example.com", Role::Viewer).await;
    let svc = f.svc.clone();
    let tries: Vec<_> = (0..12)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                svc.sign_in(attempt("fy@example.com", "wrong password!", ""))
                    .await
            })
        })
        .collect();
    let mut checked = 0;
    for t in tries {
        if matches!(
            t.await.unwrap(),
            Err(ServiceError::User(UserError::SignInRefused))
        ) {
            checked += 1;
        }
    }
    assert!(
        checked <= FAILURES_PER_USER as usize + 1,
        "{checked} passwords checked"
    );
}

#[tokio::test]
async fn changes_to_a_user_are_checked_against_the_record_as_stored() {
    let f = fixture().await;
    let (_, signed) = signed_up(&f, "gu@example.com", Role::Reviewer).await;
    let secret = f.svc.totp_begin(&signed.user).await.unwrap();
    f.svc
        .totp_confirm(&signed.user, &totp::code_at(&secret, now()))
        .await
        .unwrap();
    // With a second factor on, a session alone cannot replace it.
    assert!(f.svc.totp_begin(&signed.user).await.is_err());
    let mut user = f.svc.user(&f.actor.account_id, &signed.user.id).await.unwrap();
    let last = user.totp_last_step.unwrap();
    assert!(
        !UserChange::TotpUse(last).apply(&mut user.clone()),
        "a step is taken once"
    );
    assert!(UserChange::TotpUse(last + 1).apply(&mut user.clone()));
    assert!(UserChange::Disable(5).apply(&mut user));
    assert!(
        !UserChange::TotpUse(last + 2).apply(&mut user.clone()),
        "not for a disabled user"
    );
    assert!(!UserChange::Password("x".into()).apply(&mut user.clone()));
    assert!(!UserChange::Disable(6).apply(&mut user), "disabled once");
}

#[tokio::test]
async fn a_made_up_welcome_token_is_refused_before_any_hash() {
    let f = fixture().await;
    let runs = || f.svc.argon_runs.load(std::sync::atomic::Ordering::Relaxed);
    let before = runs();
    for _ in 0..20 {
        let r = f.svc.redeem_signin_link(&"0".repeat(64), PASSWORD, "ua").await;
        assert!(matches!(r, Err(ServiceError::User(UserError::SigninLinkInvalid))));
    }
    assert_eq!(runs(), before, "no Argon2id run for a link that does not exist");
}

#[tokio::test]
async fn a_sign_in_forgets_the_sessions_that_ended_over_30_days_before() {
    let f = fixture().await;
    let (new, _) = signed_up(&f, "ana@example.com", Role::Admin).await;
    let (account, user) = (f.actor.account_id.clone(), new.user.id.clone());
    let users = f.svc.repos().users;
    let day = 86_400;
    let t = upgate_gateway::sys::now();
    // Ended 40 days ago (revoked), ended 40 days ago (expired), ended 20 days ago.
    for (n, created, revoked) in [
        (1, t - 41 * day, Some(t - 40 * day)),
        (2, t - 40 * day - 3600, None),
        (3, t - 20 * day, None),
    ] {
        let session = Session {
            id: format!("ses_{n:016x}"),
            account_id: account.clone(),
            user_id: user.clone(),
            created_at: created,
            last_seen_at: created,
            expires_at: created + SESSION_MAX_SECONDS,
            revoked_at: revoked,
            csrf: "x".into(),
            agent: "old".into(),
        };
        let note = AuditNote {
            account_id: account.clone(),
            actor: user.clone(),
            action: "user.sign_in",
            target: user.clone(),
            detail: json!({}),
        };
        users
            .create_session(&format!("hash{n}"), &session, note)
            .await
            .unwrap();
    }
    let listed = |f: &crate::service::fixture::Fixture| {
        let (svc, account, user) = (f.svc.clone(), account.clone(), user.clone());
        async move {
            let page = svc.sessions(&account, &user, None, 100).await.unwrap();
            let mut ids: Vec<String> = page.items.iter().map(|s| s.id.clone()).collect();
            ids.sort();
            ids
        }
    };
    // The third was stored last, but as created 20 days ago: nothing ended 30 days before.
    assert_eq!(listed(&f).await.len(), 4, "the sign-up's session and the three");
    // A sign-in now forgets the two that ended 40 days ago, and keeps the rest.
    f.svc
        .sign_in(attempt("ana@example.com", PASSWORD, ""))
        .await
        .unwrap();
    let ids = listed(&f).await;
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.contains(&format!("ses_{:016x}", 3)));
    assert!(!ids.contains(&format!("ses_{:016x}", 1)) && !ids.contains(&format!("ses_{:016x}", 2)));
    assert!(users.session("hash1").await.unwrap().is_none(), "the record too");
}

#[tokio::test]
async fn an_invite_forgets_the_sign_in_links_that_ended_unused() {
    let f = fixture().await;
    let stale = f
        .svc
        .create_user(&f.actor.account_id, "old@example.com", Role::Viewer, None)
        .await
        .unwrap();
    let hash = token_hash(link_token(&stale.signin_url));
    let users = f.svc.repos().users;
    // As if its 24 hours had passed: the link as stored, with an expiry in the past.
    let mut link = users.signin_link(&hash).await.unwrap().unwrap();
    link.expires_at = 1;
    crate::db::Kv::apply(
        &*f.db,
        vec![crate::db::Op::Put(
            crate::db::Tree::SigninLinks,
            hash.clone().into_bytes(),
            serde_json::to_vec(&link).unwrap(),
        )],
    )
    .unwrap();
    let fresh = f
        .svc
        .create_user(&f.actor.account_id, "new@example.com", Role::Viewer, None)
        .await
        .unwrap();
    assert!(
        users.signin_link(&hash).await.unwrap().is_none(),
        "the ended one is gone"
    );
    let kept = token_hash(link_token(&fresh.signin_url));
    assert!(
        users.signin_link(&kept).await.unwrap().is_some(),
        "the new one stays"
    );
}
