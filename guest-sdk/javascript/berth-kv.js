// State for JavaScript guests: the buckets the manifest grants, through the
// standard wasi:keyvalue imports and Berth's compare-and-swap, with the
// shape of the Rust SDK's berth_sdk::kv:
//
//   import { openBucket } from "./berth-kv.js";
//   const orders = openBucket("orders");       // BerthError 403 if not granted
//   orders.setJson("order-1", { qty: 2 });
//   const seen = orders.increment("orders-seen");
//   orders.update("count", (old) => String(Number(old ? new TextDecoder().decode(old) : 0) + 1));
//
// Revisions and counters are numbers (the WIT's u64, safe up to 2^53).
// Errors are BerthError: 403 for a bucket not granted, 503 when the backend
// is unavailable (an event is then retried), 409 when update loses 1,000
// times in a row, 500 otherwise. Build with world `stateful-backend`
// (see docs/javascript.md).

import { open } from "wasi:keyvalue/store@0.2.0-draft";
import { increment } from "wasi:keyvalue/atomics@0.2.0-draft";
import { getMany, setMany, deleteMany } from "wasi:keyvalue/batch@0.2.0-draft";
import { get as getVersioned, setIf } from "berth:backend/keyvalue-cas@0.1.0";
import { BerthError } from "./berth.js";

export const UPDATE_TRIES = 1000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (value) => (typeof value === "string" ? encoder.encode(value) : value);

function kvError(bucket, e) {
  const payload = e?.payload;
  switch (payload?.tag) {
    case "access-denied":
      return new BerthError(403, "Forbidden", `bucket \`${bucket}\` is not granted: add it to this component's \`keyvalue\` in the manifest`);
    case "no-such-store":
      return BerthError.notFound(`there is no bucket \`${bucket}\``);
    case "other":
      return payload.val.includes("unavailable")
        ? new BerthError(503, "Service Unavailable", payload.val)
        : BerthError.internal(payload.val);
    default:
      return e;
  }
}

/** An open bucket. */
export class Bucket {
  constructor(name) {
    this.name = name;
    this.inner = this.call(() => open(name));
  }

  call(f) {
    try { return f(); } catch (e) { throw kvError(this.name, e); }
  }

  get(key) { return this.call(() => this.inner.get(key)); }
  getJson(key) {
    const value = this.get(key);
    return value === undefined ? undefined : JSON.parse(decoder.decode(value));
  }
  set(key, value) { this.call(() => this.inner.set(key, bytes(value))); }
  setJson(key, value) { this.set(key, JSON.stringify(value)); }
  delete(key) { this.call(() => this.inner.delete(key)); }
  exists(key) { return this.call(() => this.inner.exists(key)); }

  /** Every key, page after page. */
  keys() {
    const keys = [];
    let cursor;
    for (;;) {
      const page = this.call(() => this.inner.listKeys(cursor));
      keys.push(...page.keys);
      if (page.cursor === undefined) return keys;
      cursor = page.cursor;
    }
  }

  increment(key, delta = 1) { return Number(this.call(() => increment(this.inner, key, BigInt(delta)))); }
  getMany(keys) { return this.call(() => getMany(this.inner, keys)).map((pair) => pair?.[1]); }
  setMany(pairs) { this.call(() => setMany(this.inner, pairs.map(([k, v]) => [k, bytes(v)]))); }
  deleteMany(keys) { this.call(() => deleteMany(this.inner, keys)); }

  /** `{ value, revision }`, or undefined if the key is not set. */
  getVersioned(key) {
    const found = this.call(() => getVersioned(this.inner, key));
    return found === undefined ? undefined : { value: found.value, revision: Number(found.revision) };
  }

  /** Sets `key` if its revision is still `revision` (0: if unset): the new revision, or undefined. */
  setIf(key, value, revision) {
    const set = this.call(() => setIf(this.inner, key, bytes(value), BigInt(revision)));
    return set === undefined ? undefined : Number(set);
  }

  /** Read, change, write-if-unchanged, until no other write comes between. */
  update(key, change) {
    for (let i = 0; i < UPDATE_TRIES; i++) {
      const current = this.getVersioned(key);
      const next = bytes(change(current?.value));
      if (this.setIf(key, next, current?.revision ?? 0) !== undefined) return next;
    }
    throw new BerthError(409, "Conflict", `\`${key}\` in bucket \`${this.name}\` changed under ${UPDATE_TRIES} updates in a row`);
  }
}

/** Opens the bucket the manifest calls `name`. */
export const openBucket = (name) => new Bucket(name);
