/**
 * Pub/sub wire messages (type range 30..39). Both are one-way: the receiver
 * answers nothing, so a publisher never waits on a subscriber.
 */
import { defineMessage } from '../wire/messages.js';
import { HEADERS_FIELD } from '../wire/headers.js';
import { f } from '../wire/schema.js';
import { RUN_FIELD, runCheck } from '../wire/run.js';
import { MAX_QUEUE_GROUP_CHARS } from './queue.js';

/** Requests on a topic (request/reply): the default wait for replies, and the bounds of a request's options. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
export const MAX_REQUEST_TIMEOUT_MS = 600_000;
export const MAX_REQUEST_REPLIES = 10_000;

/**
 * Longest topic on the wire, in characters. A valid topic is at most 256
 * UTF-8 bytes (see topic.ts), hence at most 256 UTF-16 units; the schema
 * checks characters, the handler then applies the byte and segment rules.
 */
export const MAX_WIRE_TOPIC_CHARS = 256;

/** Most queue groups one PUBLISH can name for its node. */
export const MAX_GROUPS_PER_MESSAGE = 256;
/** Reply inboxes are numbered by the requesting node. */
export const MAX_INBOX = 0xffff_ffff;

/**
 * One published message for one subscriber node: `tp` topic, `d` payload
 * (any CBOR value), `s` the publisher's sequence number (see pubsub.ts),
 * `o` the node ID of the light client the publishing node published for
 * (as that node authenticated it), `h` headers, `g` the queue groups this
 * node was chosen for (it hands the message to one local member of each),
 * `qo` "queue only": the node was chosen for `g` only, its plain
 * subscriptions get their own copy elsewhere or none, `r` the publisher's
 * reply inbox (a request: subscribers answer with REPLY), `k` a run of k
 * messages (`d` their payloads, sequence numbers `s` … `s + k - 1`; never
 * with `h`, `g`, `qo` or `r`, see wire/run.ts). The publisher is not in the
 * message: it is the verified peer of the connection it arrived on.
 */
export const PUBLISH = defineMessage(30, 'PUBLISH', {
  tp: f.str(1, MAX_WIRE_TOPIC_CHARS),
  d: f.any(),
  s: f.uint(),
  o: f.opt(f.bytes(32, 32)),
  h: HEADERS_FIELD,
  g: f.opt(f.arr(f.str(1, MAX_QUEUE_GROUP_CHARS), MAX_GROUPS_PER_MESSAGE)),
  qo: f.opt(f.bool()),
  r: f.opt(f.uint(MAX_INBOX)),
  k: RUN_FIELD,
}, { check: runCheck('s', ['h', 'g', 'qo', 'r']) });

/** One-way answer of a subscriber to a request: inbox `r` of the receiving node, payload `d`, headers `h`. */
export const REPLY = defineMessage(32, 'REPLY', {
  r: f.uint(MAX_INBOX),
  d: f.any(),
  h: HEADERS_FIELD,
});

/**
 * "I no longer subscribe to anything matching `tp`": sent by a node that
 * received a PUBLISH it has no matching subscription for, so the publisher
 * drops it from its subscriber cache instead of waiting for the TTL.
 */
export const UNSUBSCRIBED = defineMessage(31, 'UNSUBSCRIBED', {
  tp: f.str(1, MAX_WIRE_TOPIC_CHARS),
});
