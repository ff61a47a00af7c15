//! Download names and their Content-Disposition (gateway/src/names.rs): for any name a
//! browser may send, the header is visible ASCII that `http` accepts, its `filename*`
//! decodes to exactly the name we chose, the ASCII fallback cannot end its quoted string,
//! names are clean (bounded, no path, idempotent) and end in the served type's extension.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use upgate_gateway::names::{attachment_disposition, clean_display_name, download_name, MAX_NAME_BYTES};

const EXTENSIONS: [&[&str]; 4] = [&[], &["pdf"], &["jpg", "jpeg"], &["png"]];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, name)) = data.split_first() else {
        return;
    };
    let extensions = EXTENSIONS[usize::from(pick) % EXTENSIONS.len()];
    let name = String::from_utf8_lossy(name);

    let display = clean_display_name(&name);
    assert!(
        !display.is_empty() && display.len() <= MAX_NAME_BYTES,
        "{display:?}"
    );
    assert!(!display.contains(['/', '\\']), "{display:?}");
    assert_eq!(
        clean_display_name(&display),
        display,
        "cleaning is not idempotent"
    );

    let saved = download_name(&name, extensions);
    assert!(saved.len() <= MAX_NAME_BYTES, "{saved:?}");
    assert_eq!(
        download_name(&saved, extensions),
        saved,
        "a second download renames again"
    );
    if !extensions.is_empty() {
        let ext = saved.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        assert!(
            extensions.iter().any(|e| ext.eq_ignore_ascii_case(e)),
            "{saved:?}"
        );
    }

    let header = attachment_disposition(&saved);
    assert!(header.bytes().all(|b| (b' '..=b'~').contains(&b)), "{header:?}");
    assert!(http::HeaderValue::from_str(&header).is_ok());
    let rest = header
        .strip_prefix("attachment; filename=\"")
        .expect("disposition type first");
    let (fallback, encoded) = rest.split_once("\"; filename*=UTF-8''").expect("both parameters");
    assert!(!fallback.contains(['"', '\\', '%']), "{fallback:?}");
    assert!(!encoded.contains([' ', ';', ',', '"']), "{encoded:?}");
    let decoded = percent_decode_str(encoded).decode_utf8().expect("UTF-8 name");
    assert_eq!(decoded, saved, "the saved name is not the name we chose");
});
