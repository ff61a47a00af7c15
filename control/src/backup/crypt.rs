//! A backup file's encryption: the sealed-file format (segmented AES-256-GCM, every byte
//! authenticated, truncation caught) for an X25519 key derived from the operator's
//! passphrase with Argon2id. Nothing is written in the clear but the parameters below.
//!
//! ```text
//! "UPGBACKUP" 01 | salt (16) | m_kib u32be | t u32be | p u32be | sealed object
//! ```

use std::io::{self, Read, Seek, SeekFrom, Write};

use zeroize::Zeroizing;

use upgate_gateway::seal::{
    unwrap_key, DecryptReader, Header, Opener, RecipientSecretKey, Sealer, MAX_HEADER_LEN,
};

const MAGIC: &[u8; 10] = b"UPGBACKUP\x01";
pub const PREAMBLE_LEN: u64 = 10 + 16 + 12;
/// The id the sealed object is bound to: a backup's body cannot pass for a file.
const FILE_ID: &str = "upgate-backup";
/// Argon2id at 64 MiB, 3 passes: RFC 9106's second recommendation; about a third of a
/// second here, paid once per backup or restore.
const M_KIB: u32 = 64 * 1024;
const T: u32 = 3;
const P: u32 = 1;
/// Shorter passphrases are refused: the file may sit in places an attacker can copy.
pub const MIN_PASSPHRASE: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    #[error("the passphrase must be at least {MIN_PASSPHRASE} characters")]
    WeakPassphrase,
    #[error("not an upgate backup (or one of a newer version)")]
    NotABackup,
    #[error("the passphrase is wrong, or the backup is damaged")]
    WrongPassphrase,
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn derive(
    passphrase: &str,
    salt: &[u8; 16],
    m: u32,
    t: u32,
    p: u32,
) -> Result<RecipientSecretKey, CryptError> {
    // Bounds on what a file may ask for, so a crafted header cannot make restore allocate
    // gigabytes or spin for hours.
    if !(8..=1024 * 1024).contains(&m) || !(1..=16).contains(&t) || !(1..=16).contains(&p) {
        return Err(CryptError::NotABackup);
    }
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(|_| CryptError::NotABackup)?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut *key)
        .map_err(|_| CryptError::NotABackup)?;
    Ok(RecipientSecretKey::from_bytes(0, *key))
}

/// Writes the preamble and seals everything written after it; [`SealWriter::finish`] seals
/// the last segment. Only sealed bytes reach `inner`.
pub struct SealWriter<W: Write> {
    sealer: Option<Sealer>,
    /// Sealed bytes waiting for the file, then the segment being filled (plaintext, which
    /// is why it is zeroized on drop).
    out: Zeroizing<Vec<u8>>,
    inner: W,
}

/// Bytes gathered before a write to the file.
const FLUSH_AT: usize = 1024 * 1024;

impl<W: Write> SealWriter<W> {
    pub fn new(mut inner: W, passphrase: &str) -> Result<SealWriter<W>, CryptError> {
        if passphrase.chars().count() < MIN_PASSPHRASE {
            return Err(CryptError::WeakPassphrase);
        }
        let salt: [u8; 16] = upgate_gateway::sys::random().map_err(|e| io::Error::other(e.to_string()))?;
        let secret = derive(passphrase, &salt, M_KIB, T, P)?;
        let sealer = Sealer::new(&secret.public(), FILE_ID).map_err(|e| io::Error::other(e.to_string()))?;
        inner.write_all(MAGIC)?;
        inner.write_all(&salt)?;
        for n in [M_KIB, T, P] {
            inner.write_all(&n.to_be_bytes())?;
        }
        let out = Zeroizing::new(sealer.header().to_vec());
        Ok(SealWriter {
            sealer: Some(sealer),
            out,
            inner,
        })
    }

    /// Seals the last segment and returns the file, every byte written to it.
    pub fn finish(mut self) -> Result<W, CryptError> {
        let sealer = self.sealer.take().expect("finished once");
        let _ = sealer.finish(&mut self.out);
        self.inner.write_all(&self.out)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let sealer = self.sealer.as_mut().expect("not finished");
        sealer.push(buf, &mut self.out);
        // The segment being filled is plaintext at the end of `out`: it stays in memory.
        let ready = self.out.len() - (sealer.segment_len() - sealer.room());
        if ready >= FLUSH_AT {
            self.inner.write_all(&self.out[..ready])?;
            self.out.drain(..ready);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader over a file from `offset` on, as if the file began there.
struct From<R> {
    inner: R,
    offset: u64,
}

impl<R: Read> Read for From<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<R: Seek> Seek for From<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let pos = match pos {
            SeekFrom::Start(n) => SeekFrom::Start(n + self.offset),
            other => other,
        };
        Ok(self.inner.seek(pos)? - self.offset)
    }
}

/// Checks the passphrase and returns the backup's plaintext as a reader; every segment is
/// authenticated as it is read, and a cut-off file fails at its end.
pub fn open(mut file: std::fs::File, passphrase: &str) -> Result<impl Read, CryptError> {
    let len = file.metadata()?.len();
    let mut preamble = [0u8; PREAMBLE_LEN as usize];
    file.read_exact(&mut preamble)
        .map_err(|_| CryptError::NotABackup)?;
    if &preamble[..10] != MAGIC {
        return Err(CryptError::NotABackup);
    }
    let salt: [u8; 16] = preamble[10..26].try_into().expect("16 bytes");
    let n = |i: usize| u32::from_be_bytes(preamble[i..i + 4].try_into().expect("4 bytes"));
    let secret = derive(passphrase, &salt, n(26), n(30), n(34))?;
    let mut head = vec![0u8; MAX_HEADER_LEN.min((len - PREAMBLE_LEN) as usize)];
    file.read_exact(&mut head)?;
    let header = Header::parse(&head).map_err(|e| CryptError::Damaged(e.to_string()))?;
    header
        .check_file_id(FILE_ID)
        .map_err(|_| CryptError::NotABackup)?;
    let key = unwrap_key(&header, &secret).map_err(|_| CryptError::WrongPassphrase)?;
    let mut inner = From {
        inner: file,
        offset: PREAMBLE_LEN,
    };
    inner.seek(SeekFrom::Start(0))?;
    DecryptReader::new(inner, len - PREAMBLE_LEN, Opener::new(header, key))
        .map_err(|e| CryptError::Damaged(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &str = "correct horse battery staple";

    fn sealed(data: &[u8]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut w = SealWriter::new(file.reopen().unwrap(), PASS).unwrap();
        // In uneven pieces, across segment and flush boundaries.
        for piece in data.chunks(70_001) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap();
        file
    }

    #[test]
    fn what_is_sealed_opens_with_the_passphrase_only_and_no_plaintext_is_written() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let file = sealed(&data);
        let raw = std::fs::read(file.path()).unwrap();
        assert!(
            !raw.windows(64).any(|w| w == &data[1000..1064]),
            "plaintext on disk"
        );
        let mut back = Vec::new();
        open(file.reopen().unwrap(), PASS)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(matches!(
            open(file.reopen().unwrap(), "correct horse battery stapl"),
            Err(CryptError::WrongPassphrase)
        ));
    }

    #[test]
    fn a_cut_or_altered_backup_is_refused() {
        let data = vec![7u8; 200_000];
        let file = sealed(&data);
        let raw = std::fs::read(file.path()).unwrap();
        for damaged in [raw[..raw.len() - 1].to_vec(), {
            let mut r = raw.clone();
            r[raw.len() / 2] ^= 1;
            r
        }] {
            std::fs::write(file.path(), &damaged).unwrap();
            let mut back = Vec::new();
            let read = open(file.reopen().unwrap(), PASS).and_then(|mut r| Ok(r.read_to_end(&mut back)?));
            assert!(read.is_err(), "damage went unnoticed");
        }
        std::fs::write(file.path(), b"PK\x03\x04 not a backup at all, just some zip file").unwrap();
        assert!(matches!(
            open(file.reopen().unwrap(), PASS),
            Err(CryptError::NotABackup)
        ));
    }

    #[test]
    fn short_passphrases_are_refused() {
        assert!(matches!(
            SealWriter::new(Vec::new(), "short"),
            Err(CryptError::WeakPassphrase)
        ));
    }
}
