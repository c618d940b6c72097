import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Contact } from '../../src/dht/contact.js';
import { commonPrefixLength } from '../../src/dht/id.js';
import { RoutingTable } from '../../src/dht/routing-table.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

function randomId(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

/** An ID whose first bit differs from `local`: all such IDs share bucket 0, which never splits. */
function farId(local: Uint8Array): Uint8Array {
  const id = randomId();
  id[0] = (id[0]! & 0x7f) | (~local[0]! & 0x80);
  return id;
}

function contact(id: Uint8Array, port = 4000): Contact {
  return { id, host: '127.0.0.1', port };
}

function setup(options: { pingFreshMs?: number; maxFailures?: number; ping?: (c: Contact) => Promise<boolean> } = {}) {
  const local = randomId();
  const clock = { t: 1_000_000, now() { return this.t; } };
  const pinged: Contact[] = [];
  const answers = new Map<string, boolean>();
  const ping = options.ping ?? (async (c: Contact) => {
    pinged.push(c);
    return answers.get(Buffer.from(c.id).toString('hex')) ?? true;
  });
  const table = new RoutingTable({ localId: local, ping, clock }, { k: 20, pingFreshMs: options.pingFreshMs ?? 30_000, maxFailures: options.maxFailures ?? 2 });
  const bucket: Contact[] = [];
  for (let i = 0; i < 20; i++) {
    const c = contact(farId(local), 5000 + i);
    bucket.push(c);
    table.add(c);
  }
  const setAnswer = (c: Contact, ok: boolean) => answers.set(Buffer.from(c.id).toString('hex'), ok);
  return { local, clock, table, bucket, pinged, setAnswer };
}

describe('RoutingTable', () => {
  it('ignores ourselves and clients without a listening port', () => {
    const { local, table } = setup();
    const before = table.size;
    table.add(contact(local));
    table.add(contact(randomId(), 0));
    assert.equal(table.size, before);
  });

  it('keeps a full bucket whose oldest contacts answer, and drops the newcomer', async () => {
    const { clock, table, bucket, pinged, local } = setup();
    clock.t += 60_000;
    const newcomer = contact(farId(local));
    table.add(newcomer);
    await tick();
    assert.deepEqual(pinged.map((c) => c.port), bucket.slice(0, 3).map((c) => c.port), 'the three least recently seen are pinged');
    assert.equal(table.size, 20);
    assert.equal(table.get(newcomer.id), undefined);
    for (const c of bucket) assert.ok(table.get(c.id));
  });

  it('evicts the oldest contacts that fail to answer and adds the newcomer', async () => {
    const { clock, table, bucket, setAnswer, local } = setup();
    clock.t += 60_000;
    setAnswer(bucket[1]!, false);
    const newcomer = contact(farId(local));
    table.add(newcomer);
    await tick();
    assert.equal(table.get(bucket[1]!.id), undefined, 'the silent contact is evicted');
    assert.ok(table.get(bucket[0]!.id), 'a contact that answers stays');
    assert.ok(table.get(bucket[2]!.id));
    assert.ok(table.get(newcomer.id), 'the newcomer takes the freed slot');
    assert.equal(table.size, 20);
    assert.equal(table.evictions, 1);
  });

  it('moves a contact that answered the eviction ping to the tail of its bucket', async () => {
    const { clock, table, bucket, pinged, local } = setup();
    clock.t += 60_000;
    table.add(contact(farId(local)));
    await tick();
    pinged.length = 0;
    // The next newcomer makes the bucket ping the next three oldest, not the same ones again.
    clock.t += 60_000;
    table.add(contact(farId(local)));
    await tick();
    assert.deepEqual(pinged.map((c) => c.port), bucket.slice(3, 6).map((c) => c.port));
  });

  it('does not ping contacts heard from recently', async () => {
    const { table, pinged, local } = setup();
    const newcomer = contact(farId(local));
    table.add(newcomer);
    await tick();
    assert.equal(pinged.length, 0);
    assert.equal(table.get(newcomer.id), undefined);
  });

  it('evicts a contact whose last request failed without pinging it', async () => {
    const { clock, table, bucket, pinged, local } = setup();
    clock.t += 60_000;
    table.markFailed(bucket[0]!.id);
    const newcomer = contact(farId(local));
    table.add(newcomer);
    await tick();
    assert.ok(!pinged.some((c) => c.port === bucket[0]!.port));
    assert.equal(table.get(bucket[0]!.id), undefined);
    assert.ok(table.get(newcomer.id));
  });

  it('de-duplicates concurrent pings of the same contact', async () => {
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { clock, table, local } = setup({
      ping: async () => {
        calls++;
        await gate;
        return true;
      },
    });
    clock.t += 60_000;
    table.add(contact(farId(local)));
    table.add(contact(farId(local)));
    table.add(contact(farId(local)));
    await tick();
    assert.equal(calls, 3, 'three newcomers, but the same three oldest contacts are pinged once each');
    release();
    await tick();
  });

  it('drops a contact after maxFailures failed requests in a row, and a sighting resets the count', () => {
    const { table, bucket } = setup({ maxFailures: 2 });
    const [a, b] = bucket;
    table.markFailed(a!.id);
    table.add(a!); // heard from it again
    table.markFailed(a!.id);
    assert.ok(table.get(a!.id));
    table.markFailed(b!.id);
    table.markFailed(b!.id);
    assert.equal(table.get(b!.id), undefined);
    assert.equal(table.size, 19);
  });

  it('copies an ID that is a view into a larger buffer (a decoded frame)', () => {
    const { table, local } = setup();
    const near = new Uint8Array(local);
    near[31]! ^= 1; // next to us: its bucket is not the full one
    const frame = Buffer.alloc(100);
    frame.set(near, 10);
    table.add(contact(frame.subarray(10, 42)));
    const stored = table.get(near)!;
    assert.equal(stored.id.buffer.byteLength, 32);
  });

  it('updates the address of a known contact', () => {
    const { table, bucket } = setup();
    table.add({ ...bucket[0]!, port: 7777 });
    assert.equal(table.get(bucket[0]!.id)!.port, 7777);
    assert.equal(table.size, 20);
  });

  it('reports buckets without a recent lookup and random IDs inside them', () => {
    const { local, clock, table } = setup();
    // Contacts at several distances so the closest neighbour sits in a deep bucket.
    for (let i = 1; i <= 8; i++) table.add(contact(table.randomIdInBucket(i)));
    assert.deepEqual(table.staleBuckets(60_000), [], 'a fresh table has nothing stale');
    assert.equal(table.staleBuckets(0).length, 9, 'forced: buckets 0..8');
    clock.t += 60_000;
    table.touch(table.randomIdInBucket(3));
    assert.deepEqual(table.staleBuckets(60_000), [0, 1, 2, 4, 5, 6, 7, 8]);
    for (let i = 0; i < 256; i += 17) assert.equal(commonPrefixLength(local, table.randomIdInBucket(i)), i);
  });
});
