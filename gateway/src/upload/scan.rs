//! The scan stage: after the last byte, the gateway decrypts its own sealed spool on a
//! blocking thread and feeds it to the scanner at disk speed (a slow caller is never piped
//! live into clamd, which would drop a stream that stalls past its ReadTimeout).

use std::path::PathBuf;

use crate::scanner::{Scan, Scanner, SpoolUnreadable};
use crate::seal::{DecryptReader, Opener};

pub async fn scan_spool(
    scanner: &Scanner,
    spool: PathBuf,
    ciphertext_len: u64,
    plaintext_len: u64,
    opener: Opener,
) -> Result<Scan, SpoolUnreadable> {
    scanner
        .scan(plaintext_len, move || {
            let file = std::fs::File::open(&spool).map_err(|e| SpoolUnreadable(e.to_string()))?;
            DecryptReader::new(std::io::BufReader::new(file), ciphertext_len, opener)
                .map_err(|e| SpoolUnreadable(e.to_string()))
        })
        .await
}
