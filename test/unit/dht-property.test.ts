import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Identity } from '../../src/identity/identity.js';
import { commonPrefixLength, compareDistance, randomIdWithPrefix, xorDistance } from '../../src/dht/id.js';
import { signRecord, verifyRecord } from '../../src/dht/record.js';
import { RecordStore } from '../../src/dht/record-store.js';
import { RoutingTable } from '../../src/dht/routing-table.js';

const id32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

function lexCompare(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

describe('DHT properties', () => {
  it('compareDistance orders like the XOR distance read as a big-endian number', () => {
    fc.assert(
      fc.property(id32, id32, id32, (a, b, t) => {
        const got = Math.sign(compareDistance(a, b, t));
        assert.equal(got, Math.sign(lexCompare(xorDistance(a, t), xorDistance(b, t))));
        assert.equal(Math.sign(compareDistance(b, a, t)), -got);
        assert.equal(got === 0, Buffer.from(a).equals(Buffer.from(b)));
      }),
    );
  });

  it('randomIdWithPrefix lands in the requested bucket', () => {
    fc.assert(
      fc.property(id32, fc.integer({ min: 0, max: 255 }), (self, i) => {
        assert.equal(commonPrefixLength(self, randomIdWithPrefix(self, i)), i);
      }),
    );
  });

  it('closest(target, n) returns the n nearest contacts of the table, nearest first', () => {
    fc.assert(
      fc.property(id32, fc.array(id32, { maxLength: 120 }), id32, fc.integer({ min: 1, max: 40 }), (self, ids, target, n) => {
        const table = new RoutingTable({ localId: self, ping: async () => true }, { k: 4 });
        ids.forEach((id, i) => table.add({ id, host: '10.0.0.1', port: 1 + i }));
        const all = table.toArray();
        const expected = [...all].sort((a, b) => compareDistance(a.id, b.id, target)).slice(0, n);
        assert.deepEqual(table.closest(target, n), expected);
        assert.equal(table.size, all.length);
      }),
      { numRuns: 300 },
    );
  });

  it('signed records verify, and any single-byte change to the value breaks them', () => {
    const identity = Identity.generate();
    fc.assert(
      fc.property(
        id32,
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.nat(),
        fc.integer({ min: 1, max: 3_600_000 }),
        fc.nat(),
        (key, value, seq, ttlMs, at) => {
          const r = signRecord(identity, { key, value, seq, ttlMs, now: 1_700_000_000_000 });
          assert.ok(verifyRecord(r));
          const changed = new Uint8Array(value);
          changed[at % value.length]! ^= 0x01;
          assert.ok(!verifyRecord({ ...r, value: changed }));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('the store keeps the highest seq of each publisher, whatever the arrival order', () => {
    const publishers = [Identity.generate(), Identity.generate(), Identity.generate()];
    const key = new Uint8Array(32).fill(9);
    const now = 1_700_000_000_000;
    // Pre-signed so the property runs fast: publisher × seq 0..9.
    const signed = publishers.map((p) =>
      Array.from({ length: 10 }, (_, seq) => signRecord(p, { key, value: new Uint8Array([seq]), seq, ttlMs: 60_000, now })),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 9 })), { maxLength: 40 }), (ops) => {
        const store = new RecordStore({ clock: { now: () => now } }, { sweepIntervalMs: 0 });
        const best = new Map<number, number>();
        for (const [p, seq] of ops) {
          try {
            store.put(signed[p]![seq]!);
          } catch {
            // stale: refused
          }
          best.set(p, Math.max(best.get(p) ?? -1, seq));
        }
        const held = store.get(key);
        assert.equal(held.length, best.size);
        for (const [p, seq] of best) {
          const r = held.find((x) => x.publisher === publishers[p]!.publicKey);
          assert.equal(r?.seq, seq);
        }
      }),
      { numRuns: 200 },
    );
  });
});
