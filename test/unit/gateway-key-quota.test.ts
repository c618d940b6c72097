import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RECORD_OVERHEAD_BYTES } from '../../src/dht/record-store.js';
import { ClientKeyQuota } from '../../src/gateway/key-quota.js';

const limitError = (what: RegExp) => (err: unknown) => {
  assert.equal((err as { code?: string }).code, 'MACULA_ERR_LIMIT');
  assert.match((err as Error).message, what);
  return true;
};

describe('ClientKeyQuota', () => {
  it('bounds the distinct keys of one client; a key it already holds costs only its bytes', () => {
    const q = new ClientKeyQuota({ maxKeys: 2, maxBytes: 10_000, allKeys: 100, allBytes: 100_000 });
    const a = ClientKeyQuota.empty();
    assert.equal(q.take(a, 'k1', 10), 10 + RECORD_OVERHEAD_BYTES);
    assert.equal(q.take(a, 'k1', 10), 10);
    q.take(a, 'k2', 10);
    assert.throws(() => q.take(a, 'k3', 10), limitError(/DHT keys .*limit of 2/));
    assert.equal(q.keys, 2);
    assert.equal(q.refused, 1);
  });

  it('bounds the bytes of one client and of all clients, and the keys of all clients (shared keys count once)', () => {
    const q = new ClientKeyQuota({ maxKeys: 10, maxBytes: 1000, allKeys: 3, allBytes: 1500 });
    const a = ClientKeyQuota.empty();
    const b = ClientKeyQuota.empty();
    assert.throws(() => q.take(a, 'big', 1000), limitError(/bytes of DHT records: this client's limit of 1000/));
    q.take(a, 'k1', 100);
    q.take(b, 'k1', 100);
    q.take(a, 'k2', 100);
    q.take(b, 'k3', 100);
    assert.equal(q.keys, 3);
    assert.throws(() => q.take(b, 'k4', 1), limitError(/DHT keys of all light clients of this node: limit of 3/));
    q.take(b, 'k2', 300);
    assert.throws(() => q.take(a, 'k1', 400), limitError(/bytes of DHT records of all light clients/));
  });

  it('gives everything back when a client unsubscribes or leaves', () => {
    const q = new ClientKeyQuota({ maxKeys: 2, maxBytes: 10_000, allKeys: 2, allBytes: 100_000 });
    const a = ClientKeyQuota.empty();
    const b = ClientKeyQuota.empty();
    const c1 = q.take(a, 'k1', 10);
    q.take(a, 'k2', 10);
    q.take(b, 'k2', 10);
    q.release(a, 'k1', c1);
    assert.equal(q.keys, 1);
    q.releaseAll(a);
    assert.equal(q.keys, 1, 'k2 is still held by b');
    q.releaseAll(b);
    assert.equal(q.keys, 0);
    assert.equal(q.bytes, 0);
    q.take(a, 'x', 1);
    q.take(a, 'y', 1);
  });
});
