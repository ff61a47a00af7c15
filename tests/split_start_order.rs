//! Start order does not matter: a gateway started before its control plane waits for it
//! (saying so in its log), then serves as soon as the control plane answers.

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
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        reqwest::get(format!("{}/healthz", gw.monitor)).await.is_err(),
        "a gateway without keys does not listen yet"
    );
    assert!(
        gw.logs().contains("waiting for the control plane"),
        "{}",
        gw.logs()
    );

    control.start_as("control").await;
    gw.wait_until_up("gateway").await;
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
