/**
 * The pieces of queue groups, headers and slow-consumer reports that need
 * no network: the subscription record's queue entries, group names, the
 * header bounds (caller side and wire schema) and the sliding minute.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeAnnouncement, encodeAnnouncement } from '../../src/pubsub/announcement.js';
import { PUBLISH } from '../../src/pubsub/messages.js';
import { validateQueueGroup } from '../../src/pubsub/queue.js';
import { SlowConsumers } from '../../src/pubsub/slow-consumers.js';
import { encodeBody } from '../../src/wire/codec.js';
import { checkHeaders, MAX_HEADER_BYTES, MAX_HEADERS } from '../../src/wire/headers.js';
import { validateMessage } from '../../src/wire/messages.js';

const address = { host: '127.0.0.1', port: 4000 };
const limits = { maxBytes: 258, maxSegments: 17 };

describe('queue entries in subscription records', () => {
  it('round-trip next to plain patterns, and alone', () => {
    const both = decodeAnnouncement(encodeAnnouncement(address, ['jobs.#'], undefined, [['jobs.*', 'workers']]), 'jobs', limits);
    assert.deepEqual(both?.patterns, [['jobs', '#']]);
    assert.deepEqual(both?.queues, [{ segs: ['jobs', '*'], group: 'workers' }]);
    const only = decodeAnnouncement(encodeAnnouncement(address, [], undefined, [['jobs.build', 'g1']]), 'jobs.build', limits);
    assert.deepEqual(only?.patterns, []);
    assert.deepEqual(only?.queues, [{ segs: ['jobs', 'build'], group: 'g1' }]);
  });

  it('a malformed queue entry makes the record malformed', () => {
    const bad = (qs: unknown) => decodeAnnouncement(encodeBody({ a: { h: '127.0.0.1', p: 1 }, ps: ['jobs.*'], qs }), 'jobs', limits);
    assert.equal(bad([['jobs.*', 'bad group']]), undefined, 'group name with a space');
    assert.equal(bad([['other.*', 'g']]), undefined, 'pattern under another prefix');
    assert.equal(bad([['jobs.*']]), undefined, 'no group');
    assert.equal(bad('jobs.*'), undefined, 'not a list');
    assert.equal(decodeAnnouncement(encodeBody({ a: { h: '127.0.0.1', p: 1 }, ps: [] }), 'jobs', limits), undefined, 'nothing announced');
  });

  it('group names: 1..64 of A-Z a-z 0-9 _ . : -', () => {
    assert.equal(validateQueueGroup('workers.eu-1:a_b'), 'workers.eu-1:a_b');
    for (const bad of ['', 'a b', 'x'.repeat(65), 'ü', 'a\nb', 7]) assert.throws(() => validateQueueGroup(bad), { code: 'MACULA_ERR_INVALID_QUEUE' });
  });
});

describe('headers', () => {
  it('are checked before sending: count, key length, value type and size, total bytes', () => {
    assert.equal(checkHeaders(undefined), undefined);
    assert.equal(checkHeaders({}), undefined, 'an empty map is not sent');
    assert.deepEqual(checkHeaders({ a: '1', b: '' }), { a: '1', b: '' });
    const bad = [
      Object.fromEntries(Array.from({ length: MAX_HEADERS + 1 }, (_, i) => [`k${i}`, 'v'])),
      { ['k'.repeat(65)]: 'v' },
      { '': 'v' },
      { k: 1 },
      { k: 'v'.repeat(1025) },
      Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`k${i}`, 'é'.repeat(500)])), // 5 × 1000 UTF-8 bytes
      ['k:v'],
      'k:v',
    ];
    for (const h of bad) assert.throws(() => checkHeaders(h), { code: 'MACULA_ERR_INVALID_HEADERS' }, JSON.stringify(h).slice(0, 60));
    assert.ok(MAX_HEADER_BYTES === 4096);
  });

  it('are part of the validated PUBLISH schema', () => {
    const publish = (h: unknown) => ({ t: PUBLISH.type, v: 1, tp: 'a.b', d: 1, s: 1, h });
    assert.deepEqual(validateMessage(publish({ x: 'y' })).h, { x: 'y' });
    assert.throws(() => validateMessage(publish({ x: 1 })), { kind: 'invalid_message' });
    assert.throws(() => validateMessage(publish(Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])))), { kind: 'invalid_message' });
    assert.throws(() => validateMessage(publish({ k: 'v'.repeat(4096) })), { kind: 'invalid_message' });
    assert.throws(() => validateMessage(publish(['x'])), { kind: 'invalid_message' });
    assert.throws(() => validateMessage({ ...publish(undefined), g: ['bad group'.repeat(10)] }), { kind: 'invalid_message' });
  });
});

describe('slow consumers', () => {
  it('rank by drops in the last minute, forget older drops, stay bounded', () => {
    let now = 1_000_000;
    const slow = new SlowConsumers({ now: () => now, max: 3 });
    slow.record('s1', () => ({ kind: 'subscription', node: 'n', pattern: 'a.#', subscription: 1 }), 5);
    slow.record('n1', () => ({ kind: 'node', node: 'peer' }), 7);
    assert.deepEqual(
      slow.top().map((c) => [c.kind, c.dropsLastMinute]),
      [
        ['node', 7],
        ['subscription', 5],
      ],
    );
    now += 30_000;
    slow.record('s1', () => assert.fail('described once'), 10);
    assert.deepEqual(slow.top()[0], { kind: 'subscription', node: 'n', pattern: 'a.#', subscription: 1, dropsLastMinute: 15, dropsTotal: 15 });
    now += 40_000; // the first drops are more than a minute old
    assert.deepEqual(
      slow.top().map((c) => [c.kind, c.dropsLastMinute, c.dropsTotal]),
      [['subscription', 10, 15]],
    );
    now += 60_000;
    assert.deepEqual(slow.top(), [], 'nothing in the last minute: nothing reported');
    for (let i = 0; i < 10; i++) slow.record(`x${i}`, () => ({ kind: 'node', node: `p${i}` }), i + 1);
    assert.equal(slow.size, 3, 'bounded');
    assert.deepEqual(
      slow.top(2).map((c) => c.node),
      ['p9', 'p8'],
    );
  });
});
