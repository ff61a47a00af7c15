//! One test suite for [`ControlLink`], run against both implementations: the in-process
//! link (`upgate serve`) and the remote client talking to the internal API over real TLS
//! (`upgate gateway`). Whatever a gateway can observe must be the same through either.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use upgate_gateway::control_link::client::RemoteControl;
use upgate_gateway::control_link::{
    Claim, ControlError, ControlLink, LinkState, NewFile, Refusal, RefusalCode,
};
use upgate_gateway::keys::GatewayKeys;
use upgate_gateway::seal::{unwrap_key, Header, RecipientSecretKey, Sealer};
use upgate_gateway::token::LinkId;

use super::InProcess;
use crate::service::fixture::{fixture, Fixture};

fn file() -> NewFile {
    crate::repo::links_suite::file()
}

async fn issue(f: &Fixture, call: &str) -> LinkId {
    f.link_on_call(call, "+14155550123").await
}

async fn files_on_call(f: &Fixture, call: &str) -> usize {
    let call = f.svc.call(&f.actor.account_id, call).await.unwrap();
    f.svc.call_details(&call).await.unwrap().files.len()
}

/// How a suite member gets its link: the fixture's service, seen through one implementation.
type Make = fn(&Fixture) -> std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn ControlLink>> + '_>>;

async fn shows_a_link_and_knows_no_other(f: &Fixture, gw: Arc<dyn ControlLink>) {
    let id = issue(f, "c").await;
    let view = gw.link(&id).await.unwrap();
    assert_eq!(
        (view.state, view.max_files, view.files_received),
        (LinkState::Active, 3, 0)
    );
    assert!(!view.allowed.is_empty());
    let other: LinkId = "00112233445566778899aabb".parse().unwrap();
    assert!(matches!(gw.link(&other).await, Err(ControlError::UnknownLink)));
    assert!(matches!(gw.claim(&other).await, Err(ControlError::UnknownLink)));
}

async fn concurrent_claims_and_commits_keep_the_quota_exact(f: &Fixture, gw: Arc<dyn ControlLink>) {
    let id = issue(f, "c").await;
    // Sixteen uploads race for three slots.
    let claims: Vec<_> = (0..16)
        .map(|_| {
            let gw = gw.clone();
            tokio::spawn(async move { gw.claim(&id).await.unwrap() })
        })
        .collect();
    let mut won = Vec::new();
    for c in claims {
        match c.await.unwrap() {
            Ok(claim) => won.push(claim),
            Err(state) => assert_eq!(state, LinkState::Used),
        }
    }
    assert_eq!(won.len(), 3);
    // A slot given back can be claimed again, once.
    gw.release(&won.pop().unwrap()).await;
    won.push(gw.claim(&id).await.unwrap().unwrap());
    assert_eq!(gw.claim(&id).await.unwrap(), Err(LinkState::Used));
    let commits: Vec<_> = won
        .into_iter()
        .map(|claim| {
            let gw = gw.clone();
            tokio::spawn(async move { gw.commit(&claim, file()).await.unwrap().unwrap() })
        })
        .collect();
    let mut states = Vec::new();
    for c in commits {
        states.push(c.await.unwrap());
    }
    assert_eq!(states.iter().filter(|s| **s == LinkState::Used).count(), 1);
    let view = gw.link(&id).await.unwrap();
    assert_eq!((view.state, view.files_received), (LinkState::Used, 3));
    assert_eq!(gw.claim(&id).await.unwrap(), Err(LinkState::Used));
    assert_eq!(files_on_call(f, "c").await, 3);
    // Racing writers still number the account's events without a gap: a reader resuming
    // after any id it saw misses nothing.
    let log = f
        .svc
        .repos
        .events
        .events_after(&f.actor.account_id, 0, 1000)
        .await
        .unwrap();
    let ids: Vec<u64> = log.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=log.len() as u64).collect::<Vec<_>>());
    let stored = log
        .iter()
        .filter(|e| matches!(e.event, crate::model::Event::FileStored { .. }))
        .count();
    assert_eq!(stored, 3);
}

async fn a_commit_for_a_link_that_ended_meanwhile_is_refused(f: &Fixture, gw: Arc<dyn ControlLink>) {
    let first = issue(f, "c").await;
    let claim = gw.claim(&first).await.unwrap().unwrap();
    // A new link for the call supersedes the first while its upload is in flight.
    f.svc.issue_link(f.actor.clone(), "c".into(), None).await.unwrap();
    assert_eq!(
        gw.commit(&claim, file()).await.unwrap(),
        Err(LinkState::Superseded)
    );
    assert_eq!(f.svc.pending(&first.to_string()).await, 0);
    assert_eq!(files_on_call(f, "c").await, 0);
    assert!(
        !gw.renew(&claim).await.unwrap(),
        "a lease on an ended link is not held"
    );
    // Finishing an ended link changes nothing.
    assert_eq!(gw.finish(&first).await.unwrap(), LinkState::Superseded);
}

async fn a_lease_that_is_not_renewed_gives_its_slot_back(f: &Fixture, gw: Arc<dyn ControlLink>) {
    f.svc.set_lease_ttl(Duration::from_secs(2));
    let id = issue(f, "c").await;
    let kept = gw.claim(&id).await.unwrap().unwrap();
    assert_eq!(kept.ttl_secs, 2);
    // Two uploads whose gateway died: nobody renews or releases them.
    let _dead: Vec<Claim> = vec![
        gw.claim(&id).await.unwrap().unwrap(),
        gw.claim(&id).await.unwrap().unwrap(),
    ];
    assert_eq!(gw.claim(&id).await.unwrap(), Err(LinkState::Used));
    // The live upload renews every half second; the dead ones' leases run out.
    for _ in 0..7 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(gw.renew(&kept).await.unwrap());
    }
    let again = [
        gw.claim(&id).await.unwrap().unwrap(),
        gw.claim(&id).await.unwrap().unwrap(),
    ];
    assert_eq!(
        gw.claim(&id).await.unwrap(),
        Err(LinkState::Used),
        "the renewed lease still holds its slot"
    );
    for claim in [&kept, &again[0], &again[1]] {
        gw.commit(claim, file()).await.unwrap().unwrap();
    }
    assert_eq!(files_on_call(f, "c").await, 3);
}

async fn a_commit_whose_lease_ended_is_recorded_only_if_there_is_room(f: &Fixture, gw: Arc<dyn ControlLink>) {
    f.svc.set_lease_ttl(Duration::from_secs(1));
    let id = issue(f, "c").await;
    let late = gw.claim(&id).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(!gw.renew(&late).await.unwrap(), "the lease ended");
    // Room: recorded all the same (the file is stored; losing it would be worse).
    assert!(gw.commit(&late, file()).await.unwrap().is_ok());
    // No room: two others hold the last two slots, so a late commit is refused.
    let later = gw.claim(&id).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    f.svc.set_lease_ttl(Duration::from_secs(60));
    let _others = [
        gw.claim(&id).await.unwrap().unwrap(),
        gw.claim(&id).await.unwrap().unwrap(),
    ];
    assert_eq!(gw.commit(&later, file()).await.unwrap(), Err(LinkState::Used));
    assert_eq!(files_on_call(f, "c").await, 1);
}

async fn released_twice_is_harmless_and_a_released_lease_is_gone(f: &Fixture, gw: Arc<dyn ControlLink>) {
    let id = issue(f, "c").await;
    let claim = gw.claim(&id).await.unwrap().unwrap();
    assert!(gw.renew(&claim).await.unwrap());
    gw.release(&claim).await;
    gw.release(&claim).await;
    assert!(!gw.renew(&claim).await.unwrap());
    assert_eq!(f.svc.pending(&id.to_string()).await, 0);
}

async fn refusals_and_finish_are_recorded(f: &Fixture, gw: Arc<dyn ControlLink>) {
    let id = issue(f, "c").await;
    let refusal = Refusal {
        code: RefusalCode::TypeNotAllowed,
        display_name: "setup.exe".into(),
        size: 3,
        verdict: None,
        message: "Please send a PDF or a JPEG photo.".into(),
        lang: "en".into(),
    };
    gw.refused(&id, refusal).await;
    let call = f.svc.call(&f.actor.account_id, "c").await.unwrap();
    let details = f.svc.call_details(&call).await.unwrap();
    match &details.events.last().unwrap().event {
        crate::model::Event::UploadRefused(r) => {
            assert_eq!(
                (r.code, r.name.as_str()),
                (RefusalCode::TypeNotAllowed, "setup.exe")
            );
            // The caller's sentence, for the assistant to repeat.
            assert_eq!(
                (r.message.as_str(), r.lang.as_str()),
                ("Please send a PDF or a JPEG photo.", "en")
            );
        }
        other => panic!("the call's last event is {other:?}"),
    }
    assert_eq!(gw.finish(&id).await.unwrap(), LinkState::Used);
    assert_eq!(gw.claim(&id).await.unwrap(), Err(LinkState::Used));
}

/// What a gateway does to a link reaches the account's event log with the change itself,
/// through the internal API as in process.
async fn every_change_on_a_link_is_in_the_event_log(f: &Fixture, gw: Arc<dyn ControlLink>) {
    let id = issue(f, "c").await;
    // The page shown twice is opened once.
    gw.opened(&id).await;
    gw.opened(&id).await;
    let claim = gw.claim(&id).await.unwrap().unwrap();
    let stored = file();
    let file_id = stored.file_id.clone();
    gw.commit(&claim, stored).await.unwrap().unwrap();
    let refusal = Refusal {
        code: RefusalCode::Infected,
        display_name: "x.pdf".into(),
        size: 3,
        verdict: None,
        message: String::new(),
        lang: String::new(),
    };
    gw.refused(&id, refusal).await;
    assert_eq!(gw.finish(&id).await.unwrap(), LinkState::Used);
    // Shown again after it ended (the "thank you" page): nothing new.
    gw.opened(&id).await;

    let account = &f.actor.account_id;
    let log = f
        .svc
        .repos
        .events
        .call_events_after(account, "c", 0, 100)
        .await
        .unwrap();
    let kinds: Vec<String> = log.iter().map(|e| e.event.kind()).collect();
    assert_eq!(
        kinds,
        [
            "link_issued",
            "sms_sent",
            "link_opened",
            "upload_started",
            "file_stored",
            "upload_refused",
            "link_finished"
        ]
    );
    assert!(log.windows(2).all(|w| w[0].id < w[1].id), "{log:?}");
    match &log[4].event {
        crate::model::Event::FileStored(stored) => {
            assert_eq!((&stored.file_id, &stored.link_id), (&file_id, &id.to_string()))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        f.svc.repos.events.events_after(account, 0, 100).await.unwrap(),
        log
    );
}

async fn a_clean_verdict_without_its_engine_is_not_recorded(f: &Fixture, gw: Arc<dyn ControlLink>) {
    let id = issue(f, "c").await;
    let claim = gw.claim(&id).await.unwrap().unwrap();
    let mut forged = file();
    forged.verdict =
        serde_json::from_str(r#"{"status":"clean","engine":null,"detail":null,"scanned_at":1}"#).unwrap();
    assert!(matches!(
        gw.commit(&claim, forged).await,
        Err(ControlError::Unavailable(_))
    ));
    assert_eq!(files_on_call(f, "c").await, 0);
}

async fn a_commit_cannot_take_over_a_recorded_file(f: &Fixture, gw: Arc<dyn ControlLink>) {
    let first = issue(f, "c").await;
    let claim = gw.claim(&first).await.unwrap().unwrap();
    let victim = file();
    gw.commit(&claim, victim.clone()).await.unwrap().unwrap();
    // Another link (another call) commits under the same object key, then under no key.
    let other = issue(f, "d").await;
    let claim = gw.claim(&other).await.unwrap().unwrap();
    let mut stolen = file();
    stolen.file_id = victim.file_id.clone();
    stolen.display_name = "mine.pdf".into();
    assert!(matches!(
        gw.commit(&claim, stolen).await,
        Err(ControlError::Unavailable(_))
    ));
    let mut malformed = file();
    malformed.file_id = "../../f_00".into();
    assert!(matches!(
        gw.commit(&claim, malformed).await,
        Err(ControlError::Unavailable(_))
    ));
    let record = f
        .svc
        .file_for(&f.actor.account_id, &victim.file_id)
        .await
        .unwrap();
    assert_eq!((record.call_id.as_str(), record.name.as_str()), ("c", "a.pdf"));
    assert_eq!(files_on_call(f, "d").await, 0);
}

async fn a_renewal_cannot_lengthen_its_lease(f: &Fixture, gw: Arc<dyn ControlLink>) {
    f.svc.set_lease_ttl(Duration::from_secs(1));
    let id = issue(f, "c").await;
    let claim = gw.claim(&id).await.unwrap().unwrap();
    let greedy = Claim {
        ttl_secs: u64::MAX,
        ..claim.clone()
    };
    assert!(gw.renew(&greedy).await.unwrap());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        f.svc.pending(&id.to_string()).await,
        0,
        "the lease ended on the server's clock"
    );
}

async fn the_keys_verify_links_and_seal_but_open_nothing(f: &Fixture, gw: Arc<dyn ControlLink>) {
    let set = gw.keys().await.unwrap();
    let keys = GatewayKeys::from_set(&set).unwrap();
    // A link the control plane issued verifies with the gateway's keys.
    let v = {
        let input =
            serde_json::from_value(json!({"assistant_id": "asst", "caller_number": "+14155550123"})).unwrap();
        f.svc.put_call(&f.actor, "k", input).await.unwrap();
        f.svc.issue_link(f.actor.clone(), "k".into(), None).await.unwrap()
    };
    let token = v.url.rsplit('/').next().unwrap();
    assert!(upgate_gateway::token::verify(&keys.links, token, upgate_gateway::sys::now()).is_ok());
    // A file sealed with them opens with the control plane's secret, and with no 32 bytes
    // the gateway was given.
    let mut sealer = Sealer::new(&keys.storage, "f_00112233445566778899aabbccddeeff").unwrap();
    let header = Header::parse(sealer.header()).unwrap();
    let mut out = Vec::new();
    sealer.push(b"a signed contract", &mut out);
    let _ = sealer.finish(&mut out);
    let keys = f.svc.keys.current();
    let secret = &keys.storage[&header.key_id()];
    assert!(unwrap_key(&header, secret).is_ok());
    let mut given: Vec<[u8; 32]> = set.link_keys.iter().map(|k| k.secret).collect();
    given.extend(set.storage.iter().map(|k| k.public));
    for bytes in given {
        let candidate = RecipientSecretKey::from_bytes(header.key_id(), bytes);
        assert!(unwrap_key(&header, &candidate).is_err());
    }
}

/// A control plane's internal API on loopback, with real TLS.
struct Internal {
    url: String,
    ca: Vec<u8>,
}

async fn internal_api(f: &Fixture) -> Internal {
    internal_api_on(f, "127.0.0.1", &[]).await
}

/// The internal API on `ip`, with a self-signed certificate also naming `extra`.
async fn internal_api_on(f: &Fixture, ip: &str, extra: &[String]) -> Internal {
    let dir = tempfile::tempdir().unwrap();
    let files = upgate_gateway::tls::ensure_self_signed_for(dir.path(), extra).unwrap();
    let tls = upgate_gateway::tls::server_config(&files).unwrap();
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let svc = f.svc.clone();
    tokio::spawn(upgate_gateway::server::serve_private(
        listener,
        Some(tls),
        move |req| crate::internal_api::handle(svc.clone(), req),
        std::future::pending(),
    ));
    // The server holds its certificate in memory: its directory may go.
    Internal {
        url: format!(
            "https://{}:{port}",
            if ip == "127.0.0.1" { "localhost" } else { ip }
        ),
        ca: std::fs::read(&files.cert_file).unwrap(),
    }
}

fn in_process(
    f: &Fixture,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn ControlLink>> + '_>> {
    Box::pin(async move { Arc::new(InProcess(f.svc.clone())) as Arc<dyn ControlLink> })
}

fn remote(f: &Fixture) -> std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn ControlLink>> + '_>> {
    Box::pin(async move {
        let api = internal_api(f).await;
        let (_, credential) = f.svc.create_gateway_credential("gw1").await.unwrap();
        // The server holds its certificate in memory: its directory may go.
        Arc::new(RemoteControl::new(&api.url, Some(&api.ca), &credential).unwrap()) as Arc<dyn ControlLink>
    })
}

macro_rules! suite {
    ($($check:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let f = super::fixture().await;
                    let make: super::Make = super::in_process;
                    let gw = make(&f).await;
                    super::$check(&f, gw).await;
                }
            )*
        }
        mod remote {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let f = super::fixture().await;
                    let make: super::Make = super::remote;
                    let gw = make(&f).await;
                    super::$check(&f, gw).await;
                }
            )*
        }
    };
}

suite!(
    shows_a_link_and_knows_no_other,
    concurrent_claims_and_commits_keep_the_quota_exact,
    a_commit_for_a_link_that_ended_meanwhile_is_refused,
    a_lease_that_is_not_renewed_gives_its_slot_back,
    a_commit_whose_lease_ended_is_recorded_only_if_there_is_room,
    released_twice_is_harmless_and_a_released_lease_is_gone,
    refusals_and_finish_are_recorded,
    every_change_on_a_link_is_in_the_event_log,
    a_clean_verdict_without_its_engine_is_not_recorded,
    a_commit_cannot_take_over_a_recorded_file,
    a_renewal_cannot_lengthen_its_lease,
    the_keys_verify_links_and_seal_but_open_nothing,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_api_gives_nothing_without_a_live_credential() {
    let f = fixture().await;
    let id = issue(&f, "c").await;
    let api = internal_api(&f).await;
    let (record, credential) = f.svc.create_gateway_credential("gw1").await.unwrap();
    let good = RemoteControl::new(&api.url, Some(&api.ca), &credential).unwrap();
    assert!(good.link(&id).await.is_ok());
    let mut wrong = credential.clone();
    wrong.pop();
    wrong.push('x');
    for presented in [wrong.as_str(), "", "gwc_0123456789abcdef"] {
        let bad = RemoteControl::new(&api.url, Some(&api.ca), presented).unwrap();
        for result in [bad.keys().await.map(|_| ()), bad.link(&id).await.map(|_| ())] {
            match result {
                Err(ControlError::Unavailable(why)) => assert!(why.contains("credential"), "{why}"),
                other => panic!("{presented:?}: {:?}", other.map(|_| "an answer")),
            }
        }
    }
    // Revoked: refused from the next call on.
    f.svc.revoke_gateway_credential(&record.id).await.unwrap();
    assert!(matches!(good.keys().await, Err(ControlError::Unavailable(_))));
    // A control plane whose certificate the gateway does not trust gets no credential.
    let stranger = tempfile::tempdir().unwrap();
    let other_ca = std::fs::read(
        upgate_gateway::tls::ensure_self_signed(stranger.path())
            .unwrap()
            .cert_file,
    )
    .unwrap();
    let (_, fresh) = f.svc.create_gateway_credential("gw2").await.unwrap();
    let mistrusting = RemoteControl::new(&api.url, Some(&other_ca), &fresh).unwrap();
    assert!(matches!(
        mistrusting.keys().await,
        Err(ControlError::Unavailable(_))
    ));
    assert!(f.svc.metrics.internal_api_refused.get() >= 7);
}

/// A gateway on another host dials the control plane by its address: the self-signed
/// internal certificate must name it (`run::internal_names`), or TLS refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_internal_certificate_is_valid_for_the_address_it_names() {
    let f = fixture().await;
    let (_, credential) = f.svc.create_gateway_credential("gw1").await.unwrap();
    for (extra, works) in [(vec!["127.0.0.2".to_string()], true), (vec![], false)] {
        let api = internal_api_on(&f, "127.0.0.2", &extra).await;
        let client = RemoteControl::new(&api.url, Some(&api.ca), &credential).unwrap();
        assert_eq!(client.keys().await.is_ok(), works, "names {extra:?}");
    }
}

/// A busy gateway makes hundreds of calls at once, each on a connection of its own
/// (HTTP/1.1): the internal API takes them all, where the plain listeners' cap (128) would
/// have dropped some.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_calls_at_once_all_get_an_answer() {
    let f = fixture().await;
    let api = internal_api(&f).await;
    let (_, credential) = f.svc.create_gateway_credential("gw1").await.unwrap();
    let client = Arc::new(RemoteControl::new(&api.url, Some(&api.ca), &credential).unwrap());
    let calls: Vec<_> = (0..300)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.keys().await.map(|_| ()) })
        })
        .collect();
    let mut failed = 0;
    for call in calls {
        failed += u32::from(call.await.unwrap().is_err());
    }
    assert_eq!(failed, 0, "calls went unanswered");
}
