//! sled behind [`Kv`]. sled 0.34 allows one process per database, which is why the CLI talks
//! to a running server over its socket instead of opening the store itself.

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{DbError, Durable, Entry, GroupCommit, Kv, Op, Tree};

pub struct SledKv {
    db: sled::Db,
    /// Indexed by [`Tree::index`].
    trees: Vec<sled::Tree>,
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
            .collect::<Result<_, DbError>>()?;
        let flusher = db.clone();
        // sled's flush writes the log buffers and syncs them: every write that returned
        // before it is recovered after a crash.
        let group = GroupCommit::new(Box::new(move || {
            flusher.flush().map(|_| ()).map_err(|e| e.to_string())
        }))?;
        Ok(SledKv { db, trees, group })
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree.index()]
    }

    /// Flushes run since open (tests check that concurrent writers share them).
    pub fn flushes(&self) -> u64 {
        self.group.flushes()
    }
}

fn batch(ops: &[&Op]) -> sled::Batch {
    let mut b = sled::Batch::default();
    for op in ops {
        match op {
            Op::Put(_, k, v) => b.insert(k.as_slice(), v.as_slice()),
            Op::Delete(_, k) => b.remove(k.as_slice()),
        }
    }
    b
}

fn op_tree(op: &Op) -> Tree {
    match op {
        Op::Put(t, _, _) | Op::Delete(t, _) => *t,
    }
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

    fn scan_prefix_rev(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, DbError> {
        self.tree(tree)
            .scan_prefix(prefix)
            .rev()
            .take(limit)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine))
            .collect()
    }

    fn write(&self, ops: Vec<Op>) -> Result<(), DbError> {
        // The trees this batch touches, in `Tree::ALL` order.
        let mut touched: Vec<Tree> = ops.iter().map(op_tree).collect();
        touched.sort_unstable();
        touched.dedup();
        match touched.as_slice() {
            [] => Ok(()),
            // One tree: a sled batch is atomic within its tree, without a transaction's
            // overlay of every tree.
            [one] => {
                let all: Vec<&Op> = ops.iter().collect();
                self.tree(*one).apply_batch(batch(&all)).map_err(engine)
            }
            // Several trees: one transaction over just those, applied atomically.
            many => {
                let trees: Vec<sled::Tree> = many.iter().map(|t| self.tree(*t).clone()).collect();
                let batches: Vec<sled::Batch> = many
                    .iter()
                    .map(|t| batch(&ops.iter().filter(|op| op_tree(op) == *t).collect::<Vec<_>>()))
                    .collect();
                trees
                    .as_slice()
                    .transaction(|tx| {
                        for (tree, b) in tx.iter().zip(&batches) {
                            tree.apply_batch(b)?;
                        }
                        Ok::<_, ConflictableTransactionError<()>>(())
                    })
                    .map_err(|e: TransactionError<()>| engine(format!("{e:?}")))
            }
        }
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
