import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import { StoreRefusedError, type StoreRefusalReason } from '../../src/dht/errors.js';
import { dhtKey } from '../../src/dht/key.js';
import { signRecord, type DhtRecord } from '../../src/dht/record.js';
import { RECORD_OVERHEAD_BYTES, RecordStore, SELF_ORIGIN, type RecordStoreComponents, type RecordStoreInit } from '../../src/dht/record-store.js';

const alice = Identity.generate();
const bob = Identity.generate();
const carol = Identity.generate();
const K1 = dhtKey('test', 'one');
const K2 = dhtKey('test', 'two');

function setup(init: RecordStoreInit = {}, components: Omit<RecordStoreComponents, 'clock'> = {}) {
  const clock = { t: 1_700_000_000_000, now() { return this.t; } };
  const store = new RecordStore({ clock, ...components }, { sweepIntervalMs: 0, ...init });
  const rec = (id: Identity, key: Uint8Array, seq: number, value = [seq], ttlMs = 300_000): DhtRecord =>
    signRecord(id, { key, value: new Uint8Array(value), seq, ttlMs, now: clock.t });
  return { clock, store, rec };
}

function refusal(fn: () => unknown, reason: StoreRefusalReason): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof StoreRefusedError);
    assert.equal(err.code, 'MACULA_ERR_STORE_REFUSED');
    assert.equal(err.reason, reason);
    return true;
  });
}

describe('RecordStore', () => {
  it('holds one record per publisher under a key, never overwriting another publisher', () => {
    const { store, rec } = setup();
    assert.equal(store.put(rec(alice, K1, 1)), 'stored');
    assert.equal(store.put(rec(bob, K1, 1)), 'stored');
    assert.equal(store.put(rec(bob, K1, 2)), 'replaced');
    const got = store.get(K1);
    assert.equal(got.length, 2);
    assert.deepEqual(got.find((r) => r.publisher === alice.publicKey)?.seq, 1);
    assert.deepEqual(got.find((r) => r.publisher === bob.publicKey)?.seq, 2);
    assert.deepEqual(store.get(K2), []);
    assert.deepEqual(store.stats().records, 2);
  });

  it('replaces only with a higher seq: equal is a no-op, lower is stale', () => {
    const { store, rec } = setup();
    store.put(rec(alice, K1, 5, [1]));
    assert.equal(store.put(rec(alice, K1, 5, [2])), 'unchanged');
    assert.deepEqual([...store.get(K1)[0]!.value], [1]);
    refusal(() => store.put(rec(alice, K1, 4)), 'stale');
    assert.equal(store.put(rec(alice, K1, 6, [3])), 'replaced');
    assert.deepEqual([...store.get(K1)[0]!.value], [3]);
  });

  it('verifies signatures before storing or replacing', () => {
    const { store, rec } = setup();
    const good = rec(alice, K1, 1);
    refusal(() => store.put({ ...good, value: new Uint8Array([42]) }), 'bad_signature');
    refusal(() => store.put({ ...good, seq: 2 }), 'bad_signature');
    refusal(() => store.put({ ...good, expires: good.expires + 1 }), 'bad_signature');
    refusal(() => store.put({ ...good, key: K2 }), 'bad_signature');
    refusal(() => store.put({ ...good, publisher: bob.publicKey }), 'bad_signature');
    store.put(good);
    // A forged higher seq cannot replace the stored record.
    refusal(() => store.put({ ...rec(alice, K1, 9), value: new Uint8Array([0]) }), 'bad_signature');
    assert.equal(store.get(K1)[0]!.seq, 1);
  });

  it('enforces TTLs with the injected clock and sweeps expired records', () => {
    const { clock, store, rec } = setup({ maxTtlMs: 600_000, maxClockSkewMs: 0 });
    store.put(rec(alice, K1, 1, [1], 1_000));
    store.put(rec(bob, K1, 1, [1], 10_000));
    store.put(rec(carol, K2, 1, [1], 1_000));
    refusal(() => store.put(rec(alice, K2, 1, [1], 600_001)), 'ttl_too_long');
    clock.t += 1_000;
    assert.equal(store.get(K1).length, 1, 'an expired record is never returned');
    assert.deepEqual(store.get(K2), []);
    assert.equal(store.stats().records, 3, 'still held until swept');
    assert.equal(store.sweep(), 2);
    assert.deepEqual(store.stats(), { ...store.stats(), records: 1, keys: 1, expired: 2 });
    const old = rec(alice, K1, 2, [1], 1_000);
    clock.t += 5_000;
    refusal(() => store.put(old), 'expired');
  });

  it('lets a new record replace an expired one of the same publisher, whatever its seq', () => {
    const { clock, store, rec } = setup();
    store.put(rec(alice, K1, 10, [1], 1_000));
    clock.t += 2_000;
    assert.equal(store.put(rec(alice, K1, 3)), 'stored');
    assert.equal(store.stats().expired, 1);
  });

  it('sweeps incrementally within a budget', () => {
    const { clock, store, rec } = setup();
    const ids = Array.from({ length: 10 }, () => Identity.generate());
    for (let i = 0; i < 10; i++) store.put(rec(ids[i]!, dhtKey('sweep', String(i)), 1, [1], 1_000));
    clock.t += 1_000;
    let removed = 0;
    for (let i = 0; i < 10 && store.size > 0; i++) removed += store.sweep(3);
    assert.equal(removed, 10);
    assert.equal(store.stats().keys, 0);
  });

  it('refuses past every bound and counts each reason', () => {
    const { store, rec } = setup({ maxRecordSize: 8, maxRecordsPerKey: 2, maxRecordsPerPublisher: 2, maxRecords: 4 });
    refusal(() => store.put(rec(alice, K1, 1, new Array(9).fill(0))), 'too_large');
    store.put(rec(alice, K1, 1));
    store.put(rec(bob, K1, 1));
    refusal(() => store.put(rec(carol, K1, 1)), 'key_full');
    store.put(rec(alice, K2, 1));
    refusal(() => store.put(rec(alice, dhtKey('test', 'three'), 1)), 'publisher_full');
    store.put(rec(bob, K2, 1));
    refusal(() => store.put(rec(carol, dhtKey('test', 'four'), 1)), 'store_full');
    refusal(() => store.put(rec(alice, K1, 0)), 'stale');
    const s = store.stats();
    assert.equal(s.records, 4);
    assert.deepEqual(s.refused, {
      bad_signature: 0,
      stale: 1,
      expired: 0,
      ttl_too_long: 0,
      too_large: 1,
      key_full: 1,
      publisher_full: 1,
      store_full: 1,
      not_a_node: 0,
    });
    // Replacing a held record is always possible: it does not grow the store.
    assert.equal(store.put(rec(alice, K1, 2)), 'replaced');
  });

  it('frees a full key of its expired records before refusing', () => {
    const { clock, store, rec } = setup({ maxRecordsPerKey: 1 });
    store.put(rec(alice, K1, 1, [1], 1_000));
    clock.t += 1_000;
    assert.equal(store.put(rec(bob, K1, 1)), 'stored');
  });

  it('bounds VALUE responses by bytes but always returns at least one record', () => {
    const { store, rec } = setup();
    store.put(rec(alice, K1, 1, new Array(1000).fill(1)));
    store.put(rec(bob, K1, 1, new Array(1000).fill(2)));
    assert.equal(store.getWire(K1, 10).length, 1);
    assert.equal(store.getWire(K1, 1_500).length, 1);
    assert.equal(store.getWire(K1, 10_000).length, 2);
  });

  it('hands out records for replication unless they were received recently', () => {
    const { clock, store, rec } = setup();
    const r = rec(alice, K1, 1);
    store.put(r);
    store.put(rec(bob, K1, 1));
    assert.equal(store.takeForReplication(10, 60_000, 1_000).length, 0, 'just received');
    clock.t += 60_000;
    store.put(r); // an identical copy arrives: someone replicated it
    const taken = store.takeForReplication(10, 60_000, 1_000);
    assert.deepEqual(taken.map((x) => x.publisher), [bob.publicKey]);
    assert.equal(store.takeForReplication(10, 60_000, 1_000).length, 0, 'marked as sent');
  });

  it('bounds live records in bytes per publisher, per key and in total', () => {
    const cost = 1000 + RECORD_OVERHEAD_BYTES;
    const { store, rec } = setup({ maxRecordSize: 1000, maxBytesPerPublisher: 2 * cost, maxBytesPerKey: 3 * cost, maxBytes: 5 * cost });
    const big = (id: Identity, key: Uint8Array, seq = 1) => rec(id, key, seq, new Array(1000).fill(7));
    store.put(big(alice, K1));
    store.put(big(alice, K2));
    refusal(() => store.put(big(alice, dhtKey('test', 'three'))), 'publisher_full');
    store.put(big(bob, K1));
    store.put(big(carol, K1));
    refusal(() => store.put(big(Identity.generate(), K1)), 'key_full');
    store.put(big(bob, K2));
    refusal(() => store.put(big(carol, dhtKey('test', 'four'))), 'store_full');
    assert.equal(store.stats().bytes, 5 * cost);
    assert.equal(store.stats().maxBytes, 5 * cost);
    assert.equal(store.stats().maxPublisherBytes, 2 * cost);
    // A replacement of the same size always fits.
    assert.equal(store.put(big(alice, K1, 2)), 'replaced');
    assert.equal(store.stats().bytes, 5 * cost);
  });

  it('refuses every STORE from a light client, counted as not_a_node', () => {
    const { store, rec } = setup();
    refusal(() => store.put(rec(alice, K1, 1), { role: 'client', source: '127.0.0.1' }), 'not_a_node');
    assert.equal(store.stats().refused.not_a_node, 1);
    assert.equal(store.size, 0);
  });

  it('keeps tombstones out of the live quota, bounded on their own, oldest dropped first', () => {
    const { store, rec } = setup({ maxRecordsPerPublisher: 2, maxTombstonesPerPublisher: 2, maxTombstones: 3 });
    const tomb = (id: Identity, key: Uint8Array, seq: number) => rec(id, key, seq, []);
    const keys = [0, 1, 2, 3].map((i) => dhtKey('tomb', String(i)));
    store.put(rec(alice, keys[0]!, 1));
    store.put(rec(alice, keys[1]!, 1));
    store.put(tomb(alice, keys[0]!, 2));
    store.put(tomb(alice, keys[1]!, 2));
    // Both withdrawn: alice's live quota is free again although the tombstones are held.
    assert.equal(store.put(rec(alice, keys[2]!, 1)), 'stored');
    assert.equal(store.put(rec(alice, keys[3]!, 1)), 'stored');
    assert.equal(store.stats().tombstones, 2);
    // A third tombstone of alice drops her oldest.
    store.put(tomb(alice, keys[2]!, 2));
    assert.equal(store.stats().tombstones, 2);
    assert.deepEqual(store.get(keys[0]!), [], 'oldest tombstone dropped');
    assert.equal(store.get(keys[1]!)[0]!.value.length, 0);
    // Past the total bound the oldest of anyone goes.
    store.put(tomb(bob, keys[0]!, 1));
    store.put(tomb(bob, keys[1]!, 1));
    assert.equal(store.stats().tombstones, 3);
    assert.equal(store.stats().tombstonesDropped, 2);
  });

  it('lets a present publisher take a full key from absent publishers, then from the largest source', () => {
    const present = new Set<string>();
    const { store, rec } = setup({ maxRecordsPerKey: 4 }, { isPresent: (pk) => present.has(Buffer.from(pk).toString('hex')) });
    const flood = Array.from({ length: 4 }, () => Identity.generate());
    for (const id of flood) store.put(rec(id, K1, 1), { role: 'node', source: '10.0.0.66' });
    // Unknown origins and absent publishers cannot evict.
    refusal(() => store.put(rec(alice, K1, 1)), 'key_full');
    refusal(() => store.put(rec(alice, K1, 1), { role: 'node', source: '10.0.0.1' }), 'key_full');
    present.add(Buffer.from(alice.publicKey).toString('hex'));
    assert.equal(store.put(rec(alice, K1, 1), { role: 'node', source: '10.0.0.1' }), 'stored');
    assert.equal(store.stats().evicted, 1);
    // Our own record takes room too.
    assert.equal(store.put(rec(bob, K1, 1), SELF_ORIGIN), 'stored');
    // Everyone present now: the flooding source gives way to a source holding fewer.
    for (const id of flood) present.add(Buffer.from(id.publicKey).toString('hex'));
    present.add(Buffer.from(carol.publicKey).toString('hex'));
    assert.equal(store.put(rec(carol, K1, 1), { role: 'node', source: '10.0.0.2' }), 'stored');
    const dave = Identity.generate();
    present.add(Buffer.from(dave.publicKey).toString('hex'));
    // 10.0.0.66 holds 1 record now, like 10.0.0.1 and 10.0.0.2: a fourth record from 10.0.0.1 is refused.
    refusal(() => store.put(rec(dave, K1, 1), { role: 'node', source: '10.0.0.1' }), 'key_full');
    assert.equal(store.get(K1).length, 4);
    assert.ok(store.get(K1).some((r) => r.publisher === alice.publicKey));
  });
});
