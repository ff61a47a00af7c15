//! The [`FileRepo`] contract, engine-neutral: files are recorded the way production records
//! them (through [`LinkRepo::record_file`]), then read back through the trait, and as a
//! caller's list through [`ListRepo`].

use std::sync::Arc;

use upgate_gateway::control_link::{Claim, NewFile, ScanVerdict};
use upgate_gateway::storage::ObjectKey;
use upgate_gateway::upload::sniff::Kind;

use super::links_suite::{ids, Seed};
use super::lists::ListRepo;
use super::{FileRepo, LinkRepo};

pub async fn run(
    files: Arc<dyn FileRepo>,
    links: Arc<dyn LinkRepo>,
    lists: Arc<dyn ListRepo>,
    seed: &dyn Seed,
) {
    let (id, link, call) = ids(40);
    let account = link.account_id.clone();
    let number = call.caller_number.clone();
    seed.seed(call, link).await;
    let mut stored = Vec::new();
    for (i, at) in [(0u64, 300u64), (1, 100)] {
        let claim = Claim {
            link_id: id,
            lease: i,
            ttl_secs: 60,
            recipient: None,
        };
        links.claim(&claim, 1_000_000).await.unwrap().unwrap().unwrap();
        let file = NewFile {
            file_id: ObjectKey::random().as_str().to_string(),
            display_name: format!("f{i}.pdf"),
            kind: Kind::Pdf,
            size: 10,
            sha256: "00".repeat(32),
            verdict: ScanVerdict::not_scanned(None, "off".into(), 1),
            key_id: 1,
            received_at: at,
            previews: false,
        };
        stored.push(file.file_id.clone());
        links
            .record_file(&claim, file, None, 1_000_001)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    let first = files.file(&account, &stored[0]).await.unwrap().expect("recorded");
    assert_eq!(
        (first.name.as_str(), first.contact.as_str()),
        ("f0.pdf", number.as_str())
    );
    assert!(
        files
            .file("acc_0000000000000999", &stored[0])
            .await
            .unwrap()
            .is_none(),
        "another account's"
    );
    assert!(files
        .file(&account, "f_00000000000000000000000000000000")
        .await
        .unwrap()
        .is_none());
    // A caller's files, newest first, a page at a time.
    let page = lists
        .contact_files_page(&account, &number, None, 1, false)
        .await
        .unwrap();
    assert_eq!(page.items[0].name, "f0.pdf", "newest first");
    let rest = lists
        .contact_files_page(&account, &number, page.next, 1, false)
        .await
        .unwrap();
    assert_eq!(rest.items[0].name, "f1.pdf");
    assert!(
        rest.next.is_none() || {
            let after = lists
                .contact_files_page(&account, &number, rest.next, 1, false)
                .await
                .unwrap();
            after.items.is_empty() && after.next.is_none()
        }
    );
    for (account, number) in [
        ("acc_0000000000000999", number.as_str()),
        (account.as_str(), "+14155550000"),
    ] {
        let none = lists
            .contact_files_page(account, number, None, 10, true)
            .await
            .unwrap();
        assert!(
            none.items.is_empty() && none.next.is_none(),
            "another account's, another number's"
        );
    }
    // A number that is a prefix of another's is not its files.
    let shorter = &number[..number.len() - 1];
    assert!(lists
        .contact_files_page(&account, shorter, None, 10, true)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(files.recorded(&stored[1]).await.unwrap());
    assert!(!files
        .recorded("f_00000000000000000000000000000000")
        .await
        .unwrap());
}
