import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Identity, nodeIdFromPublicKey } from '../../src/identity/identity.js';
import { dhtKey } from '../../src/dht/key.js';
import {
  fromWireRecord,
  recordPublisherId,
  recordSigningPayload,
  signRecord,
  toWireRecord,
  verifyRecord,
  type DhtRecord,
} from '../../src/dht/record.js';

const alice = Identity.generate();
const bob = Identity.generate();
const key = dhtKey('test', 'record');
const now = 1_700_000_000_000;

function sample(overrides: Partial<{ value: Uint8Array; seq: number; ttlMs: number }> = {}): DhtRecord {
  return signRecord(alice, { key, value: new Uint8Array([1, 2, 3]), seq: 7, ttlMs: 300_000, now, ...overrides });
}

describe('DHT records', () => {
  it('signs and verifies', () => {
    const r = sample();
    assert.equal(r.expires, now + 300_000);
    assert.deepEqual(r.publisher, alice.publicKey);
    assert.equal(r.signature.length, 64);
    assert.ok(verifyRecord(r));
    assert.deepEqual(recordPublisherId(r), alice.nodeId);
  });

  it('rejects every tampered field', () => {
    const r = sample();
    assert.ok(!verifyRecord({ ...r, value: new Uint8Array([1, 2, 4]) }), 'value');
    assert.ok(!verifyRecord({ ...r, seq: 8 }), 'seq');
    assert.ok(!verifyRecord({ ...r, expires: r.expires + 1 }), 'expiry');
    assert.ok(!verifyRecord({ ...r, key: dhtKey('test', 'other') }), 'key');
    assert.ok(!verifyRecord({ ...r, publisher: bob.publicKey }), 'another publisher key');
    const sig = new Uint8Array(r.signature);
    sig[10]! ^= 1;
    assert.ok(!verifyRecord({ ...r, signature: sig }), 'signature');
    assert.ok(!verifyRecord({ ...r, signature: new Uint8Array(10) }), 'short signature');
    assert.ok(verifyRecord(r), 'the original still verifies (the cache is keyed by content)');
  });

  it('rejects a signature by a key other than the publisher key', () => {
    const forged = signRecord(bob, { key, value: new Uint8Array([1]), seq: 1, ttlMs: 1000, now });
    assert.ok(!verifyRecord({ ...forged, publisher: alice.publicKey }));
  });

  it('uses a domain-separated fixed layout', () => {
    const r = sample({ value: new Uint8Array([9, 9]) });
    const p = Buffer.from(recordSigningPayload(r));
    assert.equal(p.subarray(0, 17).toString('latin1'), 'macula-record-v1\0');
    assert.deepEqual(new Uint8Array(p.subarray(17, 49)), key);
    assert.deepEqual(new Uint8Array(p.subarray(49, 81)), alice.publicKey);
    assert.equal(p.readBigUInt64BE(81), 7n);
    assert.equal(p.readBigUInt64BE(89), BigInt(now + 300_000));
    assert.equal(p.readUInt32BE(97), 2);
    assert.deepEqual([...p.subarray(101)], [9, 9]);
  });

  it('round-trips through the wire form and refuses malformed ones', () => {
    const r = sample();
    assert.deepEqual(fromWireRecord(toWireRecord(r)), r);
    assert.equal(fromWireRecord({ ...toWireRecord(r), k: new Uint8Array(31) }), undefined);
    assert.equal(fromWireRecord({ ...toWireRecord(r), s: -1 }), undefined);
    assert.equal(fromWireRecord({ ...toWireRecord(r), e: 1.5 }), undefined);
    assert.equal(fromWireRecord('nope'), undefined);
  });

  it('derives keys from namespace and name', () => {
    assert.equal(dhtKey('registry/acme', 'svc').length, 32);
    assert.notDeepEqual(dhtKey('registry/acme', 'svc'), dhtKey('registry/other', 'svc'));
    assert.deepEqual(dhtKey('a', 'b'), dhtKey('a', 'b'));
    assert.throws(() => dhtKey('a:b', 'c'), TypeError);
    assert.deepEqual(nodeIdFromPublicKey(alice.publicKey), alice.nodeId);
  });
});
