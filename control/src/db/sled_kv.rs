//! sled behind [`Kv`]. sled 0.34 allows one process per database, which is why the CLI talks
//! to a running server over its socket instead of opening the store itself.
//!
//! Batches are atomic through a one-entry journal, not sled's transactions: sled seals its
//! log buffer and writes and syncs it (`sync_file_range`) twice for every transaction or
//! batch (`pin_log`), so each atomic write cost two disk round trips whatever the group
//! commit did. A plain insert only appends to the log buffer, which the shared flush writes.
//!
//! How the journal makes a batch atomic: under one mutex, `write` first stores the whole
//! batch under the journal key, then applies its ops as plain inserts and removes. sled
//! recovers a prefix of its log (recovery stops at the first tear, `LogIter`), in the order
//! the writes were made. So after a crash, everything recovered after the last journal entry
//! belongs to that entry's batch, and every earlier batch is whole (the later journal entry
//! follows all of its ops). Replaying the last entry at open completes a torn batch and
//! rewrites the same values over a whole one; no write came after it that it could undo.

use std::path::Path;
use std::sync::Mutex;

use super::{DbError, Durable, Entry, GroupCommit, Kv, Op, Tree};

/// The sled tree holding the journal, apart from the control plane's trees.
const JOURNAL_TREE: &str = "journal";
const JOURNAL_KEY: &[u8] = b"last_batch";

pub struct SledKv {
    db: sled::Db,
    /// Indexed by [`Tree::index`].
    trees: Vec<sled::Tree>,
    journal: sled::Tree,
    /// One batch at a time between its journal entry and its last op.
    writer: Mutex<()>,
    /// Shares `db.flush()` between concurrent writers; its thread holds a handle on `db`
    /// until it is dropped (joined), so a reopen after drop finds the database free.
    group: GroupCommit,
}

fn engine(e: impl std::fmt::Display) -> DbError {
    DbError::Engine(e.to_string())
}

impl SledKv {
    pub fn open(path: &Path) -> Result<SledKv, DbError> {
        let db = sled::Config::new().path(path).open().map_err(engine)?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()).map_err(engine))
            .collect::<Result<Vec<_>, DbError>>()?;
        let journal = db.open_tree(JOURNAL_TREE).map_err(engine)?;
        // Complete the last batch, in case the crash tore it; then make that durable before
        // anything new is written.
        if let Some(last) = journal.get(JOURNAL_KEY).map_err(engine)? {
            for op in decode_batch(&last)? {
                apply_op(&trees, &op)?;
            }
            db.flush().map_err(engine)?;
        }
        let flusher = db.clone();
        // sled's flush writes the log buffers and syncs them: every write that returned
        // before it is recovered after a crash.
        let group = GroupCommit::new(
            "upgate-kv-flush",
            Box::new(move || flusher.flush().map(|_| ()).map_err(|e| e.to_string())),
        )?;
        Ok(SledKv {
            db,
            trees,
            journal,
            writer: Mutex::new(()),
            group,
        })
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree.index()]
    }

    /// Makes every later `next_id` larger than `n`: a restored store goes on from where
    /// the copy it came from stood, so no sequence (audit, events) repeats a number.
    pub fn advance_ids_past(&self, n: u64) -> Result<(), DbError> {
        while self.db.generate_id().map_err(engine)? < n {}
        Ok(())
    }

    /// Flushes run since open (tests check that concurrent writers share them).
    pub fn flushes(&self) -> u64 {
        self.group.flushes()
    }
}

fn apply_op(trees: &[sled::Tree], op: &Op) -> Result<(), DbError> {
    match op {
        Op::Put(t, k, v) => trees[t.index()].insert(k.as_slice(), v.as_slice()).map(drop),
        Op::Delete(t, k) => trees[t.index()].remove(k.as_slice()).map(drop),
    }
    .map_err(engine)
}

/// `[kind u8][tree u8][key len u32][key]([value len u32][value])` per op, little-endian.
fn encode_batch(ops: &[Op]) -> Vec<u8> {
    let size: usize = ops
        .iter()
        .map(|op| match op {
            Op::Put(_, k, v) => 10 + k.len() + v.len(),
            Op::Delete(_, k) => 6 + k.len(),
        })
        .sum();
    let mut out = Vec::with_capacity(size);
    for op in ops {
        let (kind, tree, key, value) = match op {
            Op::Put(t, k, v) => (0u8, t, k, Some(v)),
            Op::Delete(t, k) => (1u8, t, k, None),
        };
        out.push(kind);
        out.push(tree.index() as u8);
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        if let Some(v) = value {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
    }
    out
}

fn decode_batch(mut bytes: &[u8]) -> Result<Vec<Op>, DbError> {
    fn corrupt() -> DbError {
        DbError::Corrupt("journal: truncated or unknown entry".into())
    }
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], DbError> {
        if bytes.len() < n {
            return Err(corrupt());
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    fn chunk(bytes: &mut &[u8]) -> Result<Vec<u8>, DbError> {
        let len = u32::from_le_bytes(take(bytes, 4)?.try_into().expect("4 bytes"));
        Ok(take(bytes, len as usize)?.to_vec())
    }
    let mut ops = Vec::new();
    while !bytes.is_empty() {
        let head = take(&mut bytes, 2)?;
        let tree = *Tree::ALL.get(head[1] as usize).ok_or_else(corrupt)?;
        let key = chunk(&mut bytes)?;
        ops.push(match head[0] {
            0 => Op::Put(tree, key, chunk(&mut bytes)?),
            1 => Op::Delete(tree, key),
            _ => return Err(corrupt()),
        });
    }
    Ok(ops)
}

impl Kv for SledKv {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        Ok(self.tree(tree).get(key).map_err(engine)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Entry>, DbError> {
        self.tree(tree)
            .scan_prefix(prefix)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine))
            .collect()
    }

    fn scan_rev_before(
        &self,
        tree: Tree,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, DbError> {
        let entries: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match before {
            None => Box::new(self.tree(tree).scan_prefix(prefix).rev()),
            Some(before) => Box::new(self.tree(tree).range(prefix.to_vec()..before.to_vec()).rev()),
        };
        entries
            // `before` comes from a client's cursor: never past the prefix, whatever it says.
            .filter(|kv| kv.as_ref().map_or(true, |(k, _)| k.starts_with(prefix)))
            .take(limit)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine))
            .collect()
    }

    fn scan_from(
        &self,
        tree: Tree,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, DbError> {
        self.tree(tree)
            .range(start..)
            .take_while(|kv| kv.as_ref().map_or(true, |(k, _)| k.starts_with(prefix)))
            .take(limit)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine))
            .collect()
    }

    fn write(&self, ops: Vec<Op>) -> Result<(), DbError> {
        if ops.is_empty() {
            return Ok(());
        }
        let entry = encode_batch(&ops);
        let _one = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        // Every write has its journal entry, single ops too: that keeps "what follows the last
        // entry is its own batch" true, which is what makes the replay at open safe.
        self.journal.insert(JOURNAL_KEY, entry).map_err(engine)?;
        for op in &ops {
            apply_op(&self.trees, op)?;
        }
        Ok(())
    }

    fn durable(&self) -> Durable {
        self.group.durable()
    }

    fn next_id(&self) -> Result<u64, DbError> {
        self.db.generate_id().map_err(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        crate::db::conformance::run(|| reopen(&path));
    }

    /// sled's own background threads can hold the file lock for a moment after the last
    /// handle is dropped; a reopen in the same process waits for them.
    fn reopen(path: &Path) -> SledKv {
        for _ in 0..100 {
            match SledKv::open(path) {
                Ok(kv) => return kv,
                Err(e) if e.to_string().contains("could not acquire lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("the database stayed locked")
    }

    #[test]
    fn a_torn_batch_is_completed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let batch = vec![
            Op::Put(Tree::Links, b"l".to_vec(), b"new".to_vec()),
            Op::Put(Tree::Files, b"f".to_vec(), vec![]),
            Op::Delete(Tree::Calls, b"c".to_vec()),
        ];
        {
            let kv = reopen(&path);
            kv.apply(vec![
                Op::Put(Tree::Calls, b"c".to_vec(), b"old".to_vec()),
                Op::Put(Tree::Links, b"l".to_vec(), b"old".to_vec()),
            ])
            .unwrap();
            // What a crash after the journal entry and the first op leaves.
            kv.journal.insert(JOURNAL_KEY, encode_batch(&batch)).unwrap();
            apply_op(&kv.trees, &batch[0]).unwrap();
            kv.db.flush().unwrap();
        }
        let kv = reopen(&path);
        assert_eq!(kv.get(Tree::Links, b"l").unwrap().as_deref(), Some(&b"new"[..]));
        assert_eq!(kv.get(Tree::Files, b"f").unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(kv.get(Tree::Calls, b"c").unwrap(), None);
        // Replaying a whole batch again changes nothing.
        drop(kv);
        let kv = reopen(&path);
        assert_eq!(kv.get(Tree::Links, b"l").unwrap().as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn journal_entries_read_back_and_damaged_ones_are_refused() {
        let batch = vec![
            Op::Put(Tree::Meta, b"k".to_vec(), vec![1, 2, 3]),
            Op::Delete(Tree::CallEvents, vec![0xff; 300]),
            Op::Put(Tree::Accounts, vec![], vec![]),
        ];
        let bytes = encode_batch(&batch);
        assert_eq!(
            format!("{:?}", decode_batch(&bytes).unwrap()),
            format!("{batch:?}")
        );
        for cut in 1..bytes.len() {
            if let Ok(ops) = decode_batch(&bytes[..cut]) {
                // A cut at an op boundary reads as the ops before it, never as others.
                assert!(ops.len() < batch.len());
            }
        }
        assert!(decode_batch(&[7, 0, 0, 0, 0, 0]).is_err());
        assert!(decode_batch(&[0, 200, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn concurrent_writers_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let kv = SledKv::open(&dir.path().join("db")).unwrap();
        let applies = 32 * 20;
        std::thread::scope(|s| {
            for t in 0..32 {
                let kv = &kv;
                s.spawn(move || {
                    for i in 0..20 {
                        let key = format!("{t}/{i}").into_bytes();
                        kv.apply(vec![Op::Put(Tree::Calls, key, vec![1])]).unwrap();
                    }
                });
            }
        });
        assert!(
            kv.flushes() < applies,
            "{} flushes for {applies} applies",
            kv.flushes()
        );
    }

    const CRASH_DIR: &str = "UPGATE_KV_CRASH_DIR";

    /// Writers apply from many threads and the process aborts mid-stream (no drop, so no
    /// flush on close): every batch whose `apply` returned must be there after a reopen. If
    /// `apply` answered before the flush, the batches in sled's unwritten buffers would be
    /// lost here.
    #[test]
    fn acknowledged_batches_survive_an_abort() {
        if let Some(dir) = std::env::var_os(CRASH_DIR) {
            let kv = SledKv::open(Path::new(&dir)).unwrap();
            let acked = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|s| {
                for t in 0..8 {
                    let (kv, acked) = (&kv, &acked);
                    s.spawn(move || {
                        for i in 0.. {
                            let key = format!("{t}/{i}");
                            kv.apply(vec![
                                Op::Put(Tree::Files, key.clone().into_bytes(), vec![7; 100]),
                                Op::Put(Tree::Contacts, key.clone().into_bytes(), vec![]),
                            ])
                            .unwrap();
                            println!("acked {key}");
                            if acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 400 {
                                std::process::abort();
                            }
                        }
                    });
                }
            });
            unreachable!();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "db::sled_kv::tests::acknowledged_batches_survive_an_abort",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR, &path)
            .stderr(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "the child aborts");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let acked: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("acked ")).collect();
        assert!(acked.len() >= 400, "{} acks", acked.len());
        let kv = SledKv::open(&path).unwrap();
        for key in acked {
            assert!(
                kv.get(Tree::Files, key.as_bytes()).unwrap().is_some(),
                "{key} lost"
            );
            assert!(
                kv.get(Tree::Contacts, key.as_bytes()).unwrap().is_some(),
                "{key} half lost"
            );
        }
    }
}
