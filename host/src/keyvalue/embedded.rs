//! The embedded backend: every embedded bucket of a host in one redb file,
//! `DATA_DIR/keyvalue.redb`, a table per bucket.
//!
//! Writes go to one writer thread that commits them in groups: it takes
//! every write queued while the previous commit was on its way to disk and
//! commits them in one transaction, so a `set` returns only once its
//! transaction is durable (redb's `Durability::Immediate`: fsync before
//! `commit` returns) and yet many writers share each fsync. A crash leaves
//! the last committed transaction whole (redb's copy-on-write pages and
//! checksums), never a torn value.
//!
//! Each value is stored behind an 8-byte big-endian revision, taken from a
//! per-bucket counter that every write advances.
//!
//! Reads open a read transaction on the calling task: they are served from
//! redb's page cache, a few microseconds, far less than handing them to a
//! blocking thread would cost.

use std::collections::HashMap;
use std::path::Path;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, Table, TableDefinition, TableError, WriteTransaction,
};
use tokio::sync::oneshot;

use crate::core::keyvalue::{Bucket, KEYS_PER_PAGE, KeyPage, KvError, Versioned, add_to_counter};

/// Each bucket's last revision.
const REVISIONS: TableDefinition<&str, u64> = TableDefinition::new("berth/revisions");

/// The files open in this process, so that two hosts of one process (a
/// test, `berth conformance` runs side by side) share one.
static OPEN: LazyLock<Mutex<HashMap<PathBuf, Weak<EmbeddedStore>>>> = LazyLock::new(Mutex::default);

/// How long opening the file waits for a host that is closing it.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Most writes committed in one transaction.
const MAX_GROUP: usize = 512;

/// The file, shared by every embedded bucket of a host.
pub struct EmbeddedStore {
    db: Arc<Database>,
    writes: mpsc::Sender<Write>,
}

/// One embedded bucket.
pub struct EmbeddedBucket {
    store: Arc<EmbeddedStore>,
    /// The redb table's name.
    table: Arc<str>,
}

struct Write {
    table: Arc<str>,
    op: WriteOp,
    done: oneshot::Sender<Result<Written, KvError>>,
}

enum WriteOp {
    Set(Vec<(String, Bytes)>),
    SetIf { key: String, value: Bytes, revision: u64 },
    Delete(Vec<String>),
    Increment { key: String, delta: u64 },
}

enum Written {
    Revisions(Vec<u64>),
    Swapped(Option<u64>),
    Deleted,
    Sum(u64),
}

impl EmbeddedStore {
    /// Opens (or makes) `path`. Hosts of one process on the same file
    /// share it; a host of another process is refused, by redb's file
    /// lock, with the path in the error.
    pub fn open(path: &Path) -> anyhow::Result<Arc<Self>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let key = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, store| store.strong_count() > 0);
        if let Some(store) = open.get(&key).and_then(Weak::upgrade) {
            return Ok(store);
        }
        let store = Self::start(path)?;
        open.insert(key, Arc::downgrade(&store));
        Ok(store)
    }

    fn start(path: &Path) -> anyhow::Result<Arc<Self>> {
        let db = Arc::new(open_file(path)?);
        let (writes, queue) = mpsc::channel();
        let writer = db.clone();
        std::thread::Builder::new()
            .name("berth-kv-writer".into())
            .spawn(move || write_loop(&writer, &queue))
            .context("starting the key-value writer thread")?;
        Ok(Arc::new(Self { db, writes }))
    }

    /// The bucket stored in table `name`.
    pub fn bucket(self: &Arc<Self>, name: &str) -> EmbeddedBucket {
        EmbeddedBucket {
            store: self.clone(),
            table: format!("kv/{name}").into(),
        }
    }
}

/// Opens the file, waiting up to [`LOCK_WAIT`] for a host that is still
/// closing it (a restart) before saying another one holds it.
fn open_file(path: &Path) -> anyhow::Result<Database> {
    let started = Instant::now();
    loop {
        match Database::create(path) {
            Err(DatabaseError::DatabaseAlreadyOpen) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(DatabaseError::DatabaseAlreadyOpen) => anyhow::bail!(
                "the embedded key-value file {} is in use by another host: two hosts cannot share a DATA_DIR",
                path.display()
            ),
            other => {
                return other.with_context(|| format!("opening the embedded key-value file {}", path.display()));
            }
        }
    }
}

impl EmbeddedBucket {
    async fn write(&self, op: WriteOp) -> Result<Written, KvError> {
        let (done, answer) = oneshot::channel();
        let write = Write {
            table: self.table.clone(),
            op,
            done,
        };
        self.store
            .writes
            .send(write)
            .map_err(|_| KvError::unavailable("the embedded key-value writer has stopped"))?;
        answer
            .await
            .map_err(|_| KvError::unavailable("the embedded key-value writer has stopped"))?
    }

    /// Reads `keys` in one read transaction.
    fn read(&self, keys: &[&str]) -> Result<Vec<Option<Versioned>>, KvError> {
        let txn = self.store.db.begin_read().map_err(failed)?;
        let table = match txn.open_table(definition(&self.table)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(vec![None; keys.len()]),
            Err(e) => return Err(failed(e)),
        };
        keys.iter()
            .map(|key| Ok(table.get(*key).map_err(failed)?.map(|v| decode(v.value()))))
            .collect()
    }
}

fn definition(table: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(table)
}

fn decode(stored: &[u8]) -> Versioned {
    let (revision, value) = stored.split_at(8.min(stored.len()));
    let mut be = [0u8; 8];
    be[..revision.len()].copy_from_slice(revision);
    Versioned {
        value: Bytes::copy_from_slice(value),
        revision: u64::from_be_bytes(be),
    }
}

fn failed(e: impl std::fmt::Display) -> KvError {
    KvError::backend(format!("embedded key-value store: {e}"))
}

#[async_trait]
impl Bucket for EmbeddedBucket {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, KvError> {
        Ok(self.get_versioned(key).await?.map(|v| v.value))
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>, KvError> {
        Ok(self.read(&[key])?.pop().flatten())
    }

    async fn set_versioned(&self, key: &str, value: Bytes) -> Result<u64, KvError> {
        match self.write(WriteOp::Set(vec![(key.to_owned(), value)])).await? {
            Written::Revisions(r) => r.first().copied().ok_or_else(|| failed("no revision")),
            _ => Err(failed("unexpected answer to a set")),
        }
    }

    async fn set_if(&self, key: &str, value: Bytes, revision: u64) -> Result<Option<u64>, KvError> {
        let op = WriteOp::SetIf {
            key: key.to_owned(),
            value,
            revision,
        };
        match self.write(op).await? {
            Written::Swapped(r) => Ok(r),
            _ => Err(failed("unexpected answer to a set-if")),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.write(WriteOp::Delete(vec![key.to_owned()])).await.map(drop)
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.read(&[key])?[0].is_some())
    }

    async fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, KvError> {
        let txn = self.store.db.begin_read().map_err(failed)?;
        let table = match txn.open_table(definition(&self.table)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(KeyPage::default()),
            Err(e) => return Err(failed(e)),
        };
        let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        let mut keys = Vec::new();
        let mut more = false;
        for entry in table.iter().map_err(failed)?.skip(skip) {
            if keys.len() == KEYS_PER_PAGE {
                more = true;
                break;
            }
            keys.push(entry.map_err(failed)?.0.value().to_owned());
        }
        let cursor = more.then(|| (skip + keys.len()) as u64);
        Ok(KeyPage { keys, cursor })
    }

    async fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        match self
            .write(WriteOp::Increment {
                key: key.to_owned(),
                delta,
            })
            .await?
        {
            Written::Sum(n) => Ok(n),
            _ => Err(failed("unexpected answer to an increment")),
        }
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, KvError> {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        Ok(self.read(&keys)?.into_iter().map(|v| v.map(|v| v.value)).collect())
    }

    async fn set_many(&self, pairs: Vec<(String, Bytes)>) -> Result<Vec<u64>, KvError> {
        match self.write(WriteOp::Set(pairs)).await? {
            Written::Revisions(r) => Ok(r),
            _ => Err(failed("unexpected answer to a set-many")),
        }
    }

    async fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        self.write(WriteOp::Delete(keys.to_vec())).await.map(drop)
    }
}

/// The writer thread: commits queued writes in groups until every sender
/// (every bucket and the store) is gone.
fn write_loop(db: &Database, queue: &mpsc::Receiver<Write>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        commit_group(db, group);
    }
}

/// Applies a group in one transaction and answers each write once it is
/// durable. A write that fails on its own (an `increment` of text) fails
/// alone; a transaction that cannot commit fails them all, and none of
/// them is on disk.
fn commit_group(db: &Database, group: Vec<Write>) {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            let e = failed(e);
            group.into_iter().for_each(|w| drop(w.done.send(Err(e.clone()))));
            return;
        }
    };
    let mut answers = Vec::with_capacity(group.len());
    for write in group {
        let result = apply(&txn, &write.table, write.op);
        answers.push((write.done, result));
    }
    match txn.commit() {
        Ok(()) => answers.into_iter().for_each(|(done, r)| drop(done.send(r))),
        Err(e) => {
            let e = failed(e);
            tracing::error!("embedded key-value commit failed: {e}");
            answers
                .into_iter()
                .for_each(|(done, _)| drop(done.send(Err(e.clone()))));
        }
    }
}

fn apply(txn: &WriteTransaction, name: &str, op: WriteOp) -> Result<Written, KvError> {
    let mut table = txn.open_table(definition(name)).map_err(failed)?;
    let mut revisions = txn.open_table(REVISIONS).map_err(failed)?;
    let mut next = || -> Result<u64, KvError> {
        let last = revisions.get(name).map_err(failed)?.map_or(0, |v| v.value());
        revisions.insert(name, last + 1).map_err(failed)?;
        Ok(last + 1)
    };
    match op {
        WriteOp::Set(pairs) => {
            let mut out = Vec::with_capacity(pairs.len());
            for (key, value) in pairs {
                let revision = next()?;
                put(&mut table, &key, &value, revision)?;
                out.push(revision);
            }
            Ok(Written::Revisions(out))
        }
        WriteOp::SetIf { key, value, revision } => {
            let current = table
                .get(key.as_str())
                .map_err(failed)?
                .map(|v| decode(v.value()).revision);
            if current.unwrap_or(0) != revision {
                return Ok(Written::Swapped(None));
            }
            let new = next()?;
            put(&mut table, &key, &value, new)?;
            Ok(Written::Swapped(Some(new)))
        }
        WriteOp::Delete(keys) => {
            for key in keys {
                table.remove(key.as_str()).map_err(failed)?;
            }
            next()?;
            Ok(Written::Deleted)
        }
        WriteOp::Increment { key, delta } => {
            let current = table
                .get(key.as_str())
                .map_err(failed)?
                .map(|v| decode(v.value()).value);
            let sum = add_to_counter(&key, current.as_deref(), delta)?;
            put(&mut table, &key, sum.to_string().as_bytes(), next()?)?;
            Ok(Written::Sum(sum))
        }
    }
}

fn put(
    table: &mut Table<'_, &'static str, &'static [u8]>,
    key: &str,
    value: &[u8],
    revision: u64,
) -> Result<(), KvError> {
    let mut stored = Vec::with_capacity(8 + value.len());
    stored.extend_from_slice(&revision.to_be_bytes());
    stored.extend_from_slice(value);
    table.insert(key, stored.as_slice()).map(drop).map_err(failed)
}
