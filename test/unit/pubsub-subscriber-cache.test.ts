/** The subscriber cache and the failure detection: down nodes leave the answers listing them; up again, only the answers that left them out are rebuilt. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dhtKey } from '../../src/dht/key.js';
import { signRecord, type DhtRecord } from '../../src/dht/record.js';
import { Identity } from '../../src/identity/identity.js';
import { announcementKeyNamespace, encodeAnnouncement } from '../../src/pubsub/announcement.js';
import { Peer } from '../../src/pubsub/fanout.js';
import { SubscriberCache } from '../../src/pubsub/subscriber-cache.js';
import { validateTopic, type TopicLimits } from '../../src/pubsub/topic.js';

const limits: TopicLimits = {};

function setup() {
  const clock = { t: 1_700_000_000_000, now: () => clock.t };
  const records = new Map<string, DhtRecord[]>();
  let lookups = 0;
  const subscribe = (identity: Identity, pattern: string, port: number) => {
    const prefix = pattern.split('.').filter((s) => s !== '#' && s !== '*').join('.');
    const key = dhtKey(announcementKeyNamespace('r'), prefix);
    const k = Buffer.from(key).toString('hex');
    records.set(k, [...(records.get(k) ?? []), signRecord(identity, { key, value: encodeAnnouncement({ host: '10.0.0.1', port }, [pattern]), seq: 1, ttlMs: 600_000, now: clock.t })]);
  };
  const down = new Set<string>();
  const peers = new Map<string, Peer>();
  const cache = new SubscriberCache(
    {
      dht: {
        findValue: async (key) => {
          lookups++;
          return { records: records.get(Buffer.from(key).toString('hex')) ?? [] };
        },
      },
      realm: 'r',
      selfId: 'self',
      clock,
      peer: (nodeId, address) => peers.get(nodeId) ?? peers.set(nodeId, new Peer(nodeId, address)).get(nodeId)!,
      isDown: (id) => down.has(id),
    },
    { ttlMs: 5000, max: 100, limits },
  );
  const lookup = async (topic: string) => (await cache.lookup(topic, validateTopic(topic, limits))).nodes.map((p) => p.nodeId).sort();
  return { cache, subscribe, down, lookup, lookups: () => lookups };
}

describe('SubscriberCache and the failure detection', () => {
  it('leaves a down node out, and when it is up drops only the answers that left it out', async () => {
    const { cache, subscribe, down, lookup, lookups } = setup();
    const [a, b] = [Identity.generate(), Identity.generate()];
    subscribe(a, 'x.#', 1);
    subscribe(b, 'x.#', 2);
    subscribe(b, 'y.#', 2);
    assert.deepEqual(await lookup('x.1'), [a.nodeIdHex, b.nodeIdHex].sort());
    assert.deepEqual(await lookup('y.1'), [b.nodeIdHex]);

    down.add(a.nodeIdHex);
    cache.down(a.nodeIdHex);
    assert.deepEqual(await lookup('x.1'), [b.nodeIdHex], 'left out while down');
    const before = lookups();

    down.delete(a.nodeIdHex);
    cache.up(a.nodeIdHex);
    assert.deepEqual(await lookup('y.1'), [b.nodeIdHex]);
    assert.equal(cache.stats().topicHits >= 1, true, 'the answer that never listed it stays');
    assert.deepEqual(await lookup('x.1'), [a.nodeIdHex, b.nodeIdHex].sort(), 'the one that left it out is rebuilt with it');
    assert.equal(lookups(), before, 'from the cached prefix entries: no DHT lookup');
  });
});
