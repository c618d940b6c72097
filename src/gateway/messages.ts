/**
 * Gateway wire messages (type range 40..49): what a light client (HELLO role
 * `client`, port 0) sends to the node it is connected to, and what that node
 * sends back on the same connection.
 *
 * Every request below is answered with RPC_RESULT `{ r }` (type 21) or ERROR
 * (type 5): reusing the RPC result keeps one generic "here is your value"
 * response instead of spending a type number per answer.
 *
 * The node calls a procedure the client serves with RPC_CALL (type 20,
 * `{ p, a?, d? }`, called INVOKE here): it is exactly an RPC call whose
 * provider is the client, answered with RPC_RESULT or ERROR.
 */
import { MAX_CALL_BUDGET_MS, MAX_WIRE_PROCEDURE_LENGTH, RPC_CALL, RPC_RESULT } from '../rpc/messages.js';
import { MAX_REQUEST_REPLIES, MAX_REQUEST_TIMEOUT_MS, MAX_WIRE_TOPIC_CHARS } from '../pubsub/messages.js';
import { MAX_QUEUE_GROUP_CHARS } from '../pubsub/queue.js';
import { HEADERS_FIELD } from '../wire/headers.js';
import { MAX_SERVICE_NAME_LENGTH } from '../registry/service-name.js';
import { defineMessage } from '../wire/messages.js';
import { f } from '../wire/schema.js';
import { RUN_FIELD, runCheck } from '../wire/run.js';

/** Subscription ids are chosen by the client; u32 keeps them small on the wire. */
export const MAX_SID = 0xffff_ffff;

/**
 * First request of a client: admission (maxClients) and what the node tells
 * the client about itself and its limits. Answer `r`: `{ nodeId, realm,
 * limits: { subscriptions, calls, served } }`. A client that skips it is
 * admitted by its first other request.
 */
export const GW_ATTACH = defineMessage(40, 'GW_ATTACH', {
  software: f.opt(f.str(0, 64)),
});

/** Publish `d` (any CBOR value but undefined) to topic `tp` with headers `h`. Answer `r`: `{ nodes, local }`. */
export const GW_PUB = defineMessage(41, 'GW_PUB', {
  tp: f.str(1, MAX_WIRE_TOPIC_CHARS),
  d: f.any(),
  h: HEADERS_FIELD,
});

/**
 * Subscribe to `pattern` under the client-chosen id `sid`. Answered once the
 * subscription is announced in the mesh (or after a bounded wait). Messages
 * then arrive as GW_MSG with that sid.
 */
export const GW_SUB = defineMessage(42, 'GW_SUB', {
  pattern: f.str(1, MAX_WIRE_TOPIC_CHARS),
  sid: f.uint(MAX_SID),
  /** Queue group to join. */
  q: f.opt(f.str(1, MAX_QUEUE_GROUP_CHARS)),
});

/** Cancel subscription `sid`. Answer `r`: true if it existed. */
export const GW_UNSUB = defineMessage(43, 'GW_UNSUB', {
  sid: f.uint(MAX_SID),
});

/** Call procedure `p` in the mesh with args `a` and headers `h`. Answer `r`: the result, `h`: the result's headers. */
export const GW_CALL = defineMessage(44, 'GW_CALL', {
  p: f.str(1, MAX_WIRE_PROCEDURE_LENGTH),
  a: f.opt(f.any()),
  timeoutMs: f.opt(f.uint(MAX_CALL_BUDGET_MS)),
  h: HEADERS_FIELD,
});

/**
 * The client serves procedure `p` (`off: true`: stops serving it). The node
 * registers `p` in the mesh and forwards each call to the client as INVOKE.
 * `timeoutMs` is the per-call handler timeout (default: the node's, 30 s).
 */
export const GW_SERVE = defineMessage(45, 'GW_SERVE', {
  p: f.str(1, MAX_WIRE_PROCEDURE_LENGTH),
  off: f.opt(f.bool()),
  timeoutMs: f.opt(f.uint(MAX_CALL_BUDGET_MS)),
});

/**
 * Providers of service `name`. `fresh: true` skips the node's registry cache
 * (a DHT lookup), so a withdrawn registration is not reported from a cache
 * entry up to its 5 s TTL old. Answer `r`: `[{ nodeId, address: { host, port },
 * metadata, expires (unix ms, null for the node's own), local }]`.
 */
export const GW_LOOKUP = defineMessage(46, 'GW_LOOKUP', {
  name: f.str(1, MAX_SERVICE_NAME_LENGTH),
  fresh: f.opt(f.bool()),
});

/** The node's statistics snapshot (JSON-able map). */
export const GW_STATS = defineMessage(47, 'GW_STATS', {});

/** Routing-table contacts and open connections. */
export const GW_PEERS = defineMessage(48, 'GW_PEERS', {});

/**
 * One-way, node → client: a message for subscription `sid`. `pub` is the
 * publisher's node ID (hex) and `s` its sequence number. With `k`, a run of
 * k messages (`d` their payloads, numbered `s` … `s + k - 1`; never with
 * `h` or `rq`, see wire/run.ts).
 */
export const GW_MSG = defineMessage(49, 'GW_MSG', {
  sid: f.uint(MAX_SID),
  tp: f.str(1, MAX_WIRE_TOPIC_CHARS),
  d: f.any(),
  pub: f.opt(f.str(0, 64)),
  s: f.opt(f.uint()),
  /** The publishing client's node ID (hex), when a client published it. */
  o: f.opt(f.str(0, 64)),
  h: HEADERS_FIELD,
  /** A request: answer it with GW_RESPOND `{ rq }`. */
  rq: f.opt(f.uint(MAX_SID)),
  k: RUN_FIELD,
}, { check: runCheck('s', ['h', 'rq']) });

/**
 * Gateway messages continue in the range 70..79.
 *
 * GW_REQ: publish a request `d` to topic `tp` and gather up to `max`
 * replies within `timeoutMs`. Answer `r`: `[{ d, h?, from }]`, or ERROR
 * MACULA_ERR_NO_RESPONDERS / MACULA_ERR_TIMEOUT.
 */
export const GW_REQ = defineMessage(73, 'GW_REQ', {
  tp: f.str(1, MAX_WIRE_TOPIC_CHARS),
  d: f.any(),
  h: HEADERS_FIELD,
  max: f.opt(f.uint(MAX_REQUEST_REPLIES)),
  timeoutMs: f.opt(f.uint(MAX_REQUEST_TIMEOUT_MS)),
});

/** Answer the request delivered as GW_MSG `rq` with `d` and headers `h`. Answer `r`: false when the request is no longer known. */
export const GW_RESPOND = defineMessage(74, 'GW_RESPOND', {
  rq: f.uint(MAX_SID),
  d: f.any(),
  h: HEADERS_FIELD,
});

// ---- Client publishing with flow control (types 70..72) ---------------------

/** Publish sequence numbers are chosen by the client, from 1 up; they only name a publish in GW_ACK and GW_NACK. */
export const MAX_PUBLISH_SEQ = Number.MAX_SAFE_INTEGER;

/**
 * One-way, client → node: publish `d` (headers `h`) to topic `tp`, the client's publish
 * number `n` (1, 2, 3, … on this connection). Never answered one by one: the
 * node acknowledges with GW_ACK and reports a failure with GW_NACK. A client
 * keeps at most the window the node announced in GW_ATTACH (`limits.publishWindow`)
 * unacknowledged; the node refuses (GW_NACK MACULA_ERR_FLOW_CONTROL) what
 * arrives beyond it. With `k`, a run of k publishes (`d` their payloads,
 * numbered `n` … `n + k - 1`; never with `h`, see wire/run.ts), each
 * counting in the window.
 */
export const GW_SEND = defineMessage(70, 'GW_SEND', {
  tp: f.str(1, MAX_WIRE_TOPIC_CHARS),
  d: f.any(),
  n: f.uint(MAX_PUBLISH_SEQ),
  h: HEADERS_FIELD,
  k: RUN_FIELD,
}, { check: runCheck('n', ['h']) });

/**
 * One-way, node → client: every GW_SEND numbered up to `n` was handled
 * (queued for every subscriber node, or failed and reported by GW_NACK).
 * Cumulative, sent at most once per event-loop turn per client.
 */
export const GW_ACK = defineMessage(71, 'GW_ACK', {
  n: f.uint(MAX_PUBLISH_SEQ),
});

/** One-way, node → client: GW_SEND number `n` failed with `code` (a MACULA_ERR_… code) and `message`. */
export const GW_NACK = defineMessage(72, 'GW_NACK', {
  n: f.uint(MAX_PUBLISH_SEQ),
  code: f.str(1, 64),
  message: f.str(0, 1024),
});

/** Node → client: run a procedure the client serves (an RPC_CALL). */
export const INVOKE = RPC_CALL;
/** The answer to every gateway request and to INVOKE. */
export const RESULT = RPC_RESULT;

/** Request types a client may send, for per-type statistics. */
export const GATEWAY_REQUESTS = [GW_ATTACH, GW_PUB, GW_SEND, GW_SUB, GW_UNSUB, GW_CALL, GW_SERVE, GW_LOOKUP, GW_STATS, GW_PEERS, GW_REQ, GW_RESPOND] as const;
