// Berth for JavaScript guests: routing by subject, JSON bodies, errors with codes.
//
// The raw bindings (componentize-js, from Berth's WIT) hand the handler
// records with byte arrays and expect thrown error records; this module
// does subject routing, text/JSON conversion and error shaping once:
//
//   import { Router, reply, replyJson, jsonBody, BerthError } from "./berth.js";
//   const router = new Router()
//     .request("orders.get", (msg) => replyJson({ id: jsonBody(msg).id }));
//   export const handler = router.handler();
//   export const batchHandler = router.batchHandler();
//   export const routes = router.routes();
//
// Build: see docs/javascript.md.

import * as host from "berth:backend/host@0.1.0";
import { batchHandler } from "./berth-batch.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** An error a handler throws on purpose: the caller gets code, name, message and data. */
export class BerthError extends Error {
  constructor(code, name, message, { data, retry, kind = "handler" } = {}) {
    super(`${code} ${name}: ${message}`);
    this.code = code;
    this.errorName = name;
    this.detail = message;
    this.kind = kind;
    // Bytes go as they are; anything else as JSON.
    this.data = data === undefined || data instanceof Uint8Array ? data : encoder.encode(JSON.stringify(data));
    // 5xx failures are worth retrying by default, 4xx are not.
    this.retry = retry ?? code >= 500;
  }

  static badRequest(message) { return new BerthError(400, "Bad Request", message); }
  static notFound(message) { return new BerthError(404, "Not Found", message); }
  static internal(message) { return new BerthError(500, "Internal Server Error", message); }

  /** From the WIT error record the host returned. */
  static fromWit(e) {
    return new BerthError(e.code, e.name, e.message, { data: e.data, retry: e.disposition === "retry", kind: e.kind });
  }

  /** The WIT error record. */
  toWit() {
    return {
      kind: this.kind,
      code: this.code,
      name: this.errorName,
      message: this.detail,
      data: this.data,
      disposition: this.retry ? "retry" : "reject",
    };
  }
}

/** NATS-style: `*` is one token, a final `>` one or more. */
export function matches(pattern, subject) {
  const p = pattern.split("."), s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

const bytes = (body) => (typeof body === "string" ? encoder.encode(body) : body ?? new Uint8Array());

/** The body as UTF-8 text; 400 if it is not. */
export function text(msg) {
  try { return decoder.decode(msg.body); } catch (e) { throw BerthError.badRequest(`body is not UTF-8: ${e}`); }
}

/** The body parsed as JSON; 400 if it is not JSON. */
export function jsonBody(msg) {
  try { return JSON.parse(text(msg)); } catch (e) {
    throw e instanceof BerthError ? e : BerthError.badRequest(`body is not valid JSON: ${e.message}`);
  }
}

/** The first value of a header, its name compared ignoring ASCII case. */
export function header(msg, name) {
  const want = asciiLower(name);
  return msg.headers.find(([n]) => asciiLower(n) === want)?.[1];
}

/**
 * A path parameter of the HTTP route the request came by (`id` of
 * `/orders/{id}`), percent-decoded: the host sends it as the header
 * `berth-http-param-<name>` (docs/http.md).
 */
export const param = (msg, name) => header(msg, `berth-http-param-${name}`);

// toLowerCase() also folds non-ASCII letters, which header names compare as they are.
const asciiLower = (text) => text.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));

export const reply = (body, headers = []) => ({ body: bytes(body), headers });
export const replyJson = (value) => reply(JSON.stringify(value), [["content-type", "application/json"]]);

function call(f) {
  try { return f(); } catch (e) { throw e?.payload ? BerthError.fromWit(e.payload) : e; }
}

const message = (subject, body, headers) => ({ subject, body: bytes(body), headers: headers ?? [] });

/** Sends a message through the host; throws BerthError if the grants or the broker refuse it. */
export function publish(subject, body, headers) {
  call(() => host.publish(message(subject, body, headers)));
}

/** Sends a request through the host and returns the reply message. */
export function request(subject, body, { timeoutMs = 5000, headers } = {}) {
  return call(() => host.request(message(subject, body, headers), timeoutMs));
}

/** Writes a log line ("trace" ... "error"), tagged by the host. */
export const log = (level, line) => host.log(level, line);

/** Subject patterns mapped to handlers; the first route that matches wins. */
export class Router {
  #requests = [];
  #events = [];
  #init = () => {};

  request(pattern, f) { this.#requests.push([pattern, f]); return this; }
  event(pattern, f) { this.#events.push([pattern, f]); return this; }
  /** Receives the component's config (an object) before any message. */
  init(f) { this.#init = f; return this; }

  /** The `routes` export: what the host checks the manifest against. */
  routes() {
    const declared = [
      ...this.#requests.map(([pattern]) => ({ pattern, kind: "request" })),
      ...this.#events.map(([pattern]) => ({ pattern, kind: "event" })),
    ];
    return { routes: () => declared };
  }

  /** The `batchHandler` export: the messages the host has queued, handled
   * in one call (see berth-batch.js). */
  batchHandler() {
    return batchHandler(this.handler());
  }

  /** The `handler` export. */
  handler() {
    // Subjects seen before skip the pattern walk (bounded, for components
    // that see many).
    const found = new Map();
    const find = (routes, msg, retry) => {
      const key = (routes === this.#requests ? "r " : "e ") + msg.subject;
      let f = found.get(key);
      if (f === undefined) {
        const route = routes.find(([p]) => matches(p, msg.subject));
        if (!route) throw new BerthError(404, "Not Found", `no handler for \`${msg.subject}\``, { retry, kind: "unhandled" });
        f = route[1];
        if (found.size >= 4096) found.clear();
        found.set(key, f);
      }
      return f;
    };
    // A thrown value is the export's `err`: always hand back a WIT error record.
    const guarded = (f) => {
      try { return f(); } catch (e) {
        throw (e instanceof BerthError ? e : BerthError.internal(`${e?.name ?? "Error"}: ${e?.message ?? e}`)).toWit();
      }
    };
    return {
      init: (config) => guarded(() => this.#init(JSON.parse(config || "{}"))),
      handleRequest: (msg) => guarded(() => find(this.#requests, msg, true)(msg)),
      handleEvent: (msg) => guarded(() => { find(this.#events, msg, false)(msg); }),
    };
  }
}
