use super::*;
use crate::upload::sniff::Kind;

fn view(max_file_bytes: u64) -> LinkView {
    LinkView {
        state: LinkState::Active,
        message: "Please send the contract".into(),
        allowed: vec![Kind::Pdf],
        max_file_bytes,
        max_files: 3,
        files_received: 0,
        expires_at: 0,
    }
}

/// The plain form's own part of the page: from the form to its end.
fn plain_form(page: &str) -> &str {
    let start = page.find("<form id=\"plain\"").expect("the plain form");
    &page[start..start + page[start..].find("</form>").unwrap()]
}

#[test]
fn the_plain_form_says_its_own_cap_only_where_the_link_allows_more() {
    let small = upload_page(&view(MULTIPART_MAX_FILE_BYTES), "/u/s/x", Lang::En);
    assert!(!small.contains("This simple form"), "{small}");
    let big = upload_page(&view(300 << 20), "/u/s/x", Lang::De);
    // The page's hint names the link's limit (sent resumably by the script); the form its own.
    assert!(big.contains(&human_size(300 << 20, Lang::De.text())), "{big}");
    let form = plain_form(&big);
    let cap = human_size(MULTIPART_MAX_FILE_BYTES, Lang::De.text());
    assert!(
        form.contains(&format!("Dieses einfache Formular nimmt Dateien bis {cap}.")),
        "{form}"
    );
}
