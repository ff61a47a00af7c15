//! sled behind [`Kv`]. sled 0.34 allows one process per database, which is why the CLI talks
//! to a running server over its socket instead of opening the store itself.

use std::collections::HashMap;
use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{DbError, Entry, Kv, Op, Tree};

pub struct SledKv {
    db: sled::Db,
    trees: HashMap<Tree, sled::Tree>,
}

fn engine(e: impl std::fmt::Display) -> DbError {
    DbError::Engine(e.to_string())
}

impl SledKv {
    pub fn open(path: &Path) -> Result<SledKv, DbError> {
        let db = sled::Config::new().path(path).open().map_err(engine)?;
        let trees = Tree::ALL
            .iter()
            .map(|t| Ok((*t, db.open_tree(t.name()).map_err(engine)?)))
            .collect::<Result<_, DbError>>()?;
        Ok(SledKv { db, trees })
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[&tree]
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

    fn apply(&self, ops: Vec<Op>) -> Result<(), DbError> {
        // One transaction over all trees: sled applies it atomically, then flush makes it durable
        // before we answer anyone.
        let trees: Vec<sled::Tree> = Tree::ALL.iter().map(|t| self.tree(*t).clone()).collect();
        let index = |t: Tree| {
            Tree::ALL
                .iter()
                .position(|x| *x == t)
                .expect("every tree is listed")
        };
        trees
            .as_slice()
            .transaction(|tx| {
                for op in &ops {
                    match op {
                        Op::Put(t, k, v) => {
                            tx[index(*t)].insert(k.as_slice(), v.as_slice())?;
                        }
                        Op::Delete(t, k) => {
                            tx[index(*t)].remove(k.as_slice())?;
                        }
                    }
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e: TransactionError<()>| engine(format!("{e:?}")))?;
        self.db.flush().map_err(engine)?;
        Ok(())
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
        crate::db::conformance::run(|| SledKv::open(&path).unwrap());
    }
}
