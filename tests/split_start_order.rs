//! Start order does not matter: a gateway started before its control plane listens at once,
//! tells load balancers it is not ready and callers to try again (503, Retry-After), says
//! in its log what it waits for, and serves as soon as the control plane answers.

mod common;

use std::time::Duration;

use common::files::pdf;
use common::scene::{scene, settings};
use common::split::{control_plane, gateway, mint, url_on};
use common::upgate::upload_file;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_started_first_waits_for_its_control_plane() {
    let shared = tempfile::tempdir().unwrap();
    let storage = format!(
        "[storage]\nbackend = \"local\"\npath = {:?}\n",
        shared.path().join("objects").display().to_string()
    );
    let (mut control, internal_port) = control_plane("", &storage);
    // The credential is minted on the stopped control plane (the CLI opens its store), and
    // its internal certificate made by a first start.
    control.start_as("control").await;
    let credential = mint(&control, "gw1");
    control.stop();

    let mut gw = gateway(&control, internal_port, &credential, &storage);
    gw.spawn_as("gateway");
    gw.wait_until_up("gateway").await;
    let ready = || async {
        reqwest::get(format!("{}/readyz", gw.monitor))
            .await
            .unwrap()
            .status()
    };
    assert_eq!(ready().await, 503, "no keys yet: not ready");
    // A caller who opens a link now is asked to come back, not told the link is bad.
    let page = gw
        .gateway_client()
        .get(url_on(
            &gw,
            "https://x/u/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.headers().contains_key("retry-after"));
    let text = page.text().await.unwrap();
    assert!(text.contains("try again"), "{text}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        gw.logs().contains("waiting for the control plane"),
        "{}",
        gw.logs()
    );

    control.start_as("control").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ready().await != 200 {
        assert!(std::time::Instant::now() < deadline, "{}", gw.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = scene(&control, settings(2, 1 << 20)).await;
    let (link, _) = s.link("call-1").await;
    let (status, body) = upload_file(
        &gw.gateway_client(),
        &url_on(&gw, &link),
        "a.pdf",
        "application/pdf",
        pdf("a", 1000),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}
