// Batches for JavaScript guests: `berth:backend/batch-handler` in the
// layout of docs/batch-frames.md.
//
// The host hands a component that exports `batch-handler` every message
// already queued for it in one call, as one buffer, and takes the outcomes
// back as one buffer: one crossing into JavaScript per batch instead of
// one per message. `Router` uses this module; an app only exports it:
//
//   export const handler = router.handler();
//   export const batchHandler = router.batchHandler();
//
// A batch that cannot be read is answered with no outcomes, which makes
// the host call each message on its own.

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The answer that makes the host run a batch one message at a time. */
export const NO_OUTCOMES = new Uint8Array([0x4f, 1, 0, 0, 0, 0]);

/** The WIT `error-kind` cases, in their order: a case's position is its code. */
const KINDS = ["handler", "timeout", "unhandled", "trap", "forbidden", "overloaded", "no-responders", "too-large", "transport"];

/** The messages of a batch frame; throws on a malformed one. */
export function readBatch(frame) {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let pos = 0;
  const u32 = () => { const v = view.getUint32(pos, true); pos += 4; return v; };
  const bytes = () => {
    const n = u32();
    if (pos + n > frame.length) throw new RangeError("a length runs past the end of the batch");
    const b = frame.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const string = () => decoder.decode(bytes());
  if (frame.length < 6 || frame[0] !== 0x42 || frame[1] !== 1) throw new RangeError("not a version 1 batch frame");
  pos = 2;
  const count = u32();
  const messages = [];
  for (let i = 0; i < count; i++) {
    const flags = view.getUint8(pos++);
    const subject = string();
    // A copy: the handler may keep the body after the batch's buffer is gone.
    const body = bytes().slice();
    const headers = [];
    for (let n = u32(); n > 0; n--) headers.push([string(), string()]);
    const replyTo = flags & 1 ? string() : undefined;
    const correlationId = flags & 2 ? string() : undefined;
    messages.push({ subject, body, headers, replyTo, correlationId });
  }
  if (pos !== frame.length) throw new RangeError("bytes after the last message");
  return messages;
}

/** Grows as written to; `finish` is the frame. */
class Writer {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #pos = 0;

  #room(n) {
    if (this.#pos + n <= this.#buf.length) return;
    const bigger = new Uint8Array(Math.max(this.#buf.length * 2, this.#pos + n));
    bigger.set(this.#buf.subarray(0, this.#pos));
    this.#buf = bigger;
    this.#view = new DataView(bigger.buffer);
  }
  u8(v) { this.#room(1); this.#buf[this.#pos++] = v; }
  u16(v) { this.#room(2); this.#view.setUint16(this.#pos, v, true); this.#pos += 2; }
  u32(v) { this.#room(4); this.#view.setUint32(this.#pos, v, true); this.#pos += 4; }
  bytes(b) { this.u32(b.length); this.#room(b.length); this.#buf.set(b, this.#pos); this.#pos += b.length; }
  string(s) { this.bytes(encoder.encode(s)); }
  finish() { return this.#buf.slice(0, this.#pos); }
}

/** The outcomes frame: `undefined` for a handled event, `{reply}` or `{error}` (WIT records). */
export function writeOutcomes(outcomes) {
  const out = new Writer();
  out.u8(0x4f);
  out.u8(1);
  out.u32(outcomes.length);
  for (const outcome of outcomes) {
    if (outcome === undefined) {
      out.u8(0);
    } else if (outcome.reply) {
      out.u8(1);
      out.bytes(outcome.reply.body ?? new Uint8Array());
      const headers = outcome.reply.headers ?? [];
      out.u32(headers.length);
      for (const [name, value] of headers) { out.string(name); out.string(value); }
    } else {
      const e = outcome.error;
      out.u8(2);
      out.u8(Math.max(0, KINDS.indexOf(e.kind)));
      out.u16(e.code);
      out.string(e.name);
      out.string(e.message);
      if (e.data === undefined || e.data === null) out.u8(0);
      else { out.u8(1); out.bytes(e.data); }
      out.u8(e.disposition === "retry" ? 1 : 0);
    }
  }
  return out.finish();
}

/** The `batchHandler` export over `handler` (the `handler` export's object). */
export function batchHandler(handler) {
  return {
    handleBatch(frame) {
      let messages;
      try { messages = readBatch(frame); } catch { return NO_OUTCOMES; }
      const outcomes = messages.map((msg) => {
        try {
          if (msg.replyTo !== undefined) return { reply: handler.handleRequest(msg) };
          handler.handleEvent(msg);
          return undefined;
        } catch (error) {
          // The handler export throws WIT error records.
          return { error };
        }
      });
      return writeOutcomes(outcomes);
    },
  };
}
