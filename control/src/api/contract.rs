//! The API's contract held to the code: every problem code the control API can answer is
//! in docs/openapi.yaml's `Problem.code` enum, and every endpoint the router knows is a
//! path there (schemathesis, run by `.ci/run`, checks the rest against a live server).

use std::path::Path;

/// The calls that make a problem with a literal code as their first string argument.
const MAKERS: [&str; 8] = [
    "bad(",
    "Problem::new(",
    "Problem::bad_request(",
    "Problem::conflict(",
    "Problem::unavailable(",
    "unprocessable(",
    "rule(",
    "Problem::forbidden(",
];

fn sources(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            // The operator socket's own codes never reach the API; tests quote codes freely.
            && !["ops.rs", "tests.rs", "contract.rs"].contains(&path.file_name().unwrap().to_str().unwrap())
        {
            out.push(std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The literal code after each maker: `maker(` [`StatusCode::X,`] `"code"`.
fn codes_in(text: &str) -> Vec<String> {
    let mut codes = Vec::new();
    for maker in MAKERS {
        for (at, _) in text.match_indices(maker) {
            let mut rest = text[at + maker.len()..].trim_start();
            if let Some(after) = rest.strip_prefix("StatusCode::") {
                let comma = after.find(',').unwrap();
                rest = after[comma + 1..].trim_start();
            }
            if let Some(lit) = rest.strip_prefix('"') {
                let code = &lit[..lit.find('"').unwrap()];
                if code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    codes.push(code.to_string());
                }
            }
        }
    }
    codes
}

fn openapi() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.yaml")).unwrap()
}

/// The `Problem.code` enum's entries.
fn documented_codes(doc: &str) -> Vec<String> {
    let problem = &doc[doc.find("\n    Problem:\n").expect("a Problem schema")..];
    let code = &problem[problem.find("        code:\n").unwrap()..];
    let list = &code[code.find("enum:\n").unwrap() + 6..];
    list.lines()
        .map_while(|l| l.trim().strip_prefix("- "))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_problem_code_the_api_answers_is_in_the_openapi_enum() {
    let mut texts = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut texts);
    let mut found: Vec<String> = texts.iter().flat_map(|t| codes_in(t)).collect();
    found.sort();
    found.dedup();
    assert!(found.len() > 40, "the scan finds the codes: {found:?}");
    assert!(found.contains(&"file_shredded".to_string()) && found.contains(&"invalid_window".to_string()));
    let documented = documented_codes(&openapi());
    let missing: Vec<&String> = found.iter().filter(|c| !documented.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "codes missing from docs/openapi.yaml: {missing:?}"
    );
}

#[test]
fn every_endpoint_template_is_a_path_in_the_openapi_document() {
    let doc = openapi();
    // `/console` is the staff console's HTML, not part of the JSON API.
    for template in super::route::Route::TEMPLATES
        .iter()
        .filter(|t| **t != "/console")
    {
        assert!(
            doc.contains(&format!("\n  {template}:\n")),
            "{template} is not in docs/openapi.yaml"
        );
    }
}

#[test]
fn the_event_kinds_are_the_openapi_enum() {
    let doc = openapi();
    let kind = &doc[doc.find("\n    EventKind:\n").expect("an EventKind schema")..];
    let line = kind
        .lines()
        .find(|l| l.trim_start().starts_with("enum: ["))
        .unwrap();
    let listed: Vec<&str> = line
        .trim()
        .trim_start_matches("enum: [")
        .trim_end_matches(']')
        .split(", ")
        .collect();
    assert_eq!(listed, crate::model::EVENT_KINDS.to_vec());
}
