//! The browser tests' scripts: Playwright (from tests/browser/node_modules) driving
//! Debian's Chromium.

use std::path::PathBuf;

/// tests/browser, after checking `.ci/run` has installed what the scripts need.
pub fn scripts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "run .ci/run (it installs chromium and runs `npm ci` in tests/browser)"
    );
    dir
}
