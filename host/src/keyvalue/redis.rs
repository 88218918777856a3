//! The Redis backend: a bucket is the keys `<bucket>:<key>` on one server,
//! stored as plain strings, so other Redis clients read and write them as
//! they are; counters are `INCRBY`'s decimal numbers.
//!
//! Redis keeps no revision per key, and Berth will not wrap every value to
//! add one (that would hide the data from other clients). A revision on
//! Redis is therefore the value's SHA-1, cut to 52 bits, with bit 52 set
//! so it is never 0; compare-and-swap runs as a Lua script that computes
//! the same digest with Redis's own `redis.sha1hex`. It changes whenever
//! the value changes; a write of the very value already stored keeps it.
//!
//! One [`ConnectionManager`] per server: it multiplexes every call of the
//! host on one connection and reconnects by itself. Its timeouts make a
//! server that is down an `unavailable` error within a second, not a hang.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, RedisError, Script};

use crate::core::keyvalue::{Bucket, KEYS_PER_PAGE, KeyPage, KvError, Versioned};

/// How long one call may wait for its answer, and a (re)connect for the
/// server.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Compare-and-swap: sets KEYS[1] to ARGV[1] if its revision is ARGV[2].
const SET_IF: &str = r"
local v = redis.call('GET', KEYS[1])
local have = 0
if v then have = tonumber(string.sub(redis.sha1hex(v), 1, 13), 16) + 4503599627370496 end
if have ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
";

/// A connection to one Redis server, shared by its buckets.
#[derive(Clone)]
pub struct RedisServer {
    connection: ConnectionManager,
    url: String,
}

/// One bucket on a Redis server.
pub struct RedisBucket {
    connection: ConnectionManager,
    /// `<bucket>:`, put before every key.
    prefix: String,
    set_if: Script,
}

impl RedisServer {
    /// Connects, so a server that is not there stops the start with its
    /// address in the error.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("redis url `{url}`: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config).await.map_err(|e| {
            anyhow::anyhow!("cannot reach Redis at {url}: {e} (is redis-server running? `redis-server --port 6379`)")
        })?;
        Ok(Self {
            connection,
            url: url.to_owned(),
        })
    }

    /// The server's address, for logs.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bucket whose keys start with `<name>:`.
    pub fn bucket(&self, name: &str) -> RedisBucket {
        RedisBucket {
            connection: self.connection.clone(),
            prefix: format!("{name}:"),
            set_if: Script::new(SET_IF),
        }
    }
}

/// The revision of `value` on Redis; see the module docs.
pub fn revision(value: &[u8]) -> u64 {
    let digest = sha1_smol::Sha1::from(value).digest().bytes();
    let mut be = [0u8; 8];
    be[1..].copy_from_slice(&digest[..7]);
    // The first 13 hex digits are the first 52 bits.
    (u64::from_be_bytes(be) >> 4) | (1 << 52)
}

impl RedisBucket {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, KvError> {
        cmd.query_async(&mut self.connection.clone()).await.map_err(failed)
    }
}

fn failed(e: RedisError) -> KvError {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        KvError::unavailable(format!("redis is unavailable: {e}"))
    } else {
        KvError::backend(format!("redis: {e}"))
    }
}

#[async_trait]
impl Bucket for RedisBucket {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, KvError> {
        let value: Option<Vec<u8>> = self.run(redis::cmd("GET").arg(self.key(key))).await?;
        Ok(value.map(Bytes::from))
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>, KvError> {
        Ok(self.get(key).await?.map(|value| Versioned {
            revision: revision(&value),
            value,
        }))
    }

    async fn set_versioned(&self, key: &str, value: Bytes) -> Result<u64, KvError> {
        let revision = revision(&value);
        self.set(key, value).await?;
        Ok(revision)
    }

    /// Without the SHA-1 of the value, which only a revision needs.
    async fn set(&self, key: &str, value: Bytes) -> Result<(), KvError> {
        self.run(redis::cmd("SET").arg(self.key(key)).arg(&value[..])).await
    }

    async fn set_if(&self, key: &str, value: Bytes, expected: u64) -> Result<Option<u64>, KvError> {
        let new = revision(&value);
        let swapped: i64 = self
            .set_if
            .key(self.key(key))
            .arg(&value[..])
            .arg(expected.to_string())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        Ok((swapped == 1).then_some(new))
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        let _: i64 = self.run(redis::cmd("DEL").arg(self.key(key))).await?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        let n: i64 = self.run(redis::cmd("EXISTS").arg(self.key(key))).await?;
        Ok(n > 0)
    }

    async fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, KvError> {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor.unwrap_or(0))
            .arg("MATCH")
            .arg(format!("{}*", self.prefix))
            .arg("COUNT")
            .arg(KEYS_PER_PAGE);
        let (next, keys): (u64, Vec<String>) = self.run(&scan).await?;
        Ok(KeyPage {
            keys: keys
                .into_iter()
                .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_owned))
                .collect(),
            cursor: (next != 0).then_some(next),
        })
    }

    async fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        let delta = i64::try_from(delta)
            .map_err(|_| KvError::invalid(format!("cannot increment `{key}` by {delta}: Redis counts in 63 bits")))?;
        let sum: i64 = self
            .run(redis::cmd("INCRBY").arg(self.key(key)).arg(delta))
            .await
            .map_err(|e| match e.message.contains("not an integer") {
                true => KvError::invalid(format!("cannot increment `{key}`: its value is not a decimal number")),
                false => e,
            })?;
        u64::try_from(sum).map_err(|_| KvError::invalid(format!("`{key}` holds a negative number ({sum})")))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut mget = redis::cmd("MGET");
        for key in keys {
            mget.arg(self.key(key));
        }
        let values: Vec<Option<Vec<u8>>> = self.run(&mget).await?;
        Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
    }

    async fn set_many(&self, pairs: Vec<(String, Bytes)>) -> Result<Vec<u64>, KvError> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let mut mset = redis::cmd("MSET");
        for (key, value) in &pairs {
            mset.arg(self.key(key)).arg(&value[..]);
        }
        let () = self.run(&mset).await?;
        Ok(pairs.iter().map(|(_, v)| revision(v)).collect())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut del = redis::cmd("DEL");
        for key in keys {
            del.arg(self.key(key));
        }
        let _: i64 = self.run(&del).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_is_the_digest_redis_computes() {
        // sha1("hello") = aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d; Lua's
        // tonumber("aaf4c61ddcc5e", 16) + 2^52.
        assert_eq!(revision(b"hello"), 0xaaf4c61ddcc5e + (1 << 52));
        assert_ne!(revision(b""), 0);
    }
}
