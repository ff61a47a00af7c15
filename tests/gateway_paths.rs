//! Paths are matched exactly: a path a proxy in front could read differently from us
//! (repeated slashes, dot segments, percent-encoded slashes or letters, trailing slashes)
//! is not found, and touches no link. Sent as raw request lines: HTTP clients normalise them.

mod common;

use std::time::Duration;

use common::raw::{connect, read_until_closed, send};
use common::scene::{scene, settings};
use common::upgate::Upgate;

async fn status_of(up: &Upgate, method: &str, target: &str) -> String {
    let mut tls = connect(up).await;
    let body = if method == "POST" {
        "Content-Length: 0\r\n"
    } else {
        ""
    };
    send(
        &mut tls,
        format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n{body}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    let (answer, _, _) = read_until_closed(&mut tls, Duration::from_secs(10)).await;
    answer.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_that_a_proxy_would_read_differently() {
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(2, 200_000)).await;
    let (url, _) = scene.link("call-paths").await;
    let token = url.rsplit('/').next().unwrap().to_string();
    let t = &token;
    let (head, tail) = t.split_at(4);
    for (method, target) in [
        ("GET", format!("//u/{t}")),
        ("POST", format!("//u/{t}/files")),
        ("POST", format!("//u/{t}/done")),
        ("GET", format!("/u//{t}")),
        ("GET", format!("/u/{t}/")),
        ("POST", format!("/u/{t}//files")),
        ("POST", format!("/u/{t}/files/")),
        ("GET", format!("/u/./{t}")),
        ("POST", format!("/u/{t}/./files")),
        ("POST", format!("/u/x/../{t}/files")),
        ("GET", format!("/assets/../u/{t}")),
        ("POST", format!("/u%2F{t}/files")),
        ("POST", format!("/u/{t}%2Ffiles")),
        ("POST", format!("/u/{t}%2ffiles")),
        ("GET", format!("/%75/{t}")),
        (
            "GET",
            format!("/u/{head}%{:02X}{}", tail.as_bytes()[0], &tail[1..]),
        ),
        ("GET", format!("/u/{t}%00")),
        ("GET", format!("/u/{t};x")),
        ("GET", "//healthz".to_string()),
        ("GET", "/readyz/".to_string()),
        ("GET", "/assets/./upload.js".to_string()),
    ] {
        let line = status_of(&up, method, &target).await;
        assert!(
            line.starts_with("HTTP/1.1 404") || line.starts_with("HTTP/1.1 400"),
            "{method} {target}: {line}"
        );
    }
    let (_, call) = scene.integration.get("/v1/calls/call-paths").await;
    assert_eq!(call["links"][0]["status"], "active", "{call}");
    // The one way we serve each path still works.
    assert!(status_of(&up, "GET", &format!("/u/{t}"))
        .await
        .starts_with("HTTP/1.1 200"));
    assert!(status_of(&up, "GET", "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    assert!(status_of(&up, "GET", "/assets/upload.js")
        .await
        .starts_with("HTTP/1.1 200"));
}
