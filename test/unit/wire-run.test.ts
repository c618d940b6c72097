/**
 * Runs on the wire (wire/run.ts): the schema of GW_SEND, PUBLISH and GW_MSG
 * with `k` accepts exactly k payloads and refuses what a run cannot carry,
 * as a typed protocol error naming the field.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GW_MSG, GW_SEND } from '../../src/gateway/messages.js';
import { PUBLISH } from '../../src/pubsub/messages.js';
import { ProtocolError } from '../../src/util/errors.js';
import { decodeMessage, encodeBody } from '../../src/wire/codec.js';
import { PROTOCOL_VERSION, validateMessage } from '../../src/wire/messages.js';
import { MAX_RUN } from '../../src/wire/run.js';

const v = PROTOCOL_VERSION;
const origin = new Uint8Array(32);

function refused(msg: Record<string, unknown>, field: RegExp): void {
  assert.throws(
    () => validateMessage(msg),
    (err: unknown) => err instanceof ProtocolError && err.kind === 'invalid_message' && err.code === 'MACULA_ERR_PROTOCOL' && field.test(err.message),
  );
}

describe('runs on the wire', () => {
  test('a run of k payloads is valid on each type that carries runs, and decodes as one message', () => {
    validateMessage({ v, t: GW_SEND.type, tp: 'a.b', n: 1, d: [1, 2], k: 2 });
    validateMessage({ v, t: PUBLISH.type, tp: 'a.b', s: 7, d: ['x', null, { y: 1 }], k: 3, o: origin });
    validateMessage({ v, t: GW_MSG.type, sid: 1, tp: 'a.b', s: 7, pub: 'ab', d: Array.from({ length: MAX_RUN }, (_, i) => i), k: MAX_RUN });
    const msg = decodeMessage(encodeBody({ v, t: GW_SEND.type, tp: 'a.b', n: 5, d: [new Uint8Array([1]), 'two'], k: 2 }));
    assert.deepEqual(msg.d, [new Uint8Array([1]), 'two']);
    assert.equal(msg.k, 2);
  });

  test('without k, d is one payload even when it is an array', () => {
    validateMessage({ v, t: GW_SEND.type, tp: 'a.b', n: 1, d: [1, 2, 3] });
  });

  test('refuses a run whose d is not an array of exactly k payloads', () => {
    refused({ v, t: GW_SEND.type, tp: 'a', n: 1, d: [1, 2, 3], k: 2 }, /"d" of a run \(k = 2\) must be an array of exactly 2/);
    refused({ v, t: PUBLISH.type, tp: 'a', s: 1, d: 'x', k: 2 }, /"d" of a run/);
    refused({ v, t: GW_MSG.type, sid: 1, tp: 'a', d: [1], k: 2 }, /"d" of a run/);
  });

  test('refuses k outside 2..MAX_RUN', () => {
    refused({ v, t: GW_SEND.type, tp: 'a', n: 1, d: [1], k: 1 }, /field "k" must be an integer in 2\.\./);
    refused({ v, t: GW_SEND.type, tp: 'a', n: 1, d: [], k: 0 }, /field "k"/);
    refused({ v, t: PUBLISH.type, tp: 'a', s: 1, d: Array.from({ length: MAX_RUN + 1 }, () => 0), k: MAX_RUN + 1 }, /field "k"/);
    refused({ v, t: GW_MSG.type, sid: 1, tp: 'a', d: [1, 2], k: 2.5 }, /field "k"/);
  });

  test('refuses headers, inboxes and queue-group picks in a run', () => {
    refused({ v, t: GW_SEND.type, tp: 'a', n: 1, d: [1, 2], k: 2, h: { x: 'y' } }, /"h" cannot be part of a run/);
    refused({ v, t: PUBLISH.type, tp: 'a', s: 1, d: [1, 2], k: 2, r: 4 }, /"r" cannot be part of a run/);
    refused({ v, t: PUBLISH.type, tp: 'a', s: 1, d: [1, 2], k: 2, g: ['q'] }, /"g" cannot be part of a run/);
    refused({ v, t: PUBLISH.type, tp: 'a', s: 1, d: [1, 2], k: 2, qo: true }, /"qo" cannot be part of a run/);
    refused({ v, t: GW_MSG.type, sid: 1, tp: 'a', d: [1, 2], k: 2, rq: 3 }, /"rq" cannot be part of a run/);
    refused({ v, t: GW_MSG.type, sid: 1, tp: 'a', d: [1, 2], k: 2, h: {} }, /"h" cannot be part of a run/);
  });

  test('refuses a run whose last number is not an exact integer', () => {
    refused({ v, t: GW_SEND.type, tp: 'a', n: Number.MAX_SAFE_INTEGER, d: [1, 2], k: 2 }, /"n" \+ k - 1 of a run exceeds/);
    refused({ v, t: PUBLISH.type, tp: 'a', s: Number.MAX_SAFE_INTEGER - 1, d: [1, 2, 3], k: 3 }, /"s" \+ k - 1 of a run exceeds/);
  });
});
