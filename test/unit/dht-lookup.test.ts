import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import { toWireContact, type Contact } from '../../src/dht/contact.js';
import { bytesEqual, compareDistance, idKey } from '../../src/dht/id.js';
import { lookup, type LookupParams, type LookupPeers } from '../../src/dht/lookup.js';
import { FIND_NODE, NODES, VALUE, type DhtMessage } from '../../src/dht/messages.js';
import { signRecord, toWireRecord, verifyRecord, type DhtRecord } from '../../src/dht/record.js';
import { DialError, TimeoutError } from '../../src/util/errors.js';

const K = 20;

function randomId(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

type Script = (msg: DhtMessage, world: World) => DhtMessage | 'silent' | Promise<DhtMessage | 'silent'>;

/**
 * A scripted mesh: by default every peer answers with the true k closest
 * peers it knows of (all of them: an ideal table), so the right answer of
 * any lookup is known. Individual peers can be given another script.
 */
class World {
  readonly contacts: Contact[];
  readonly scripts = new Map<string, Script>();
  readonly records = new Map<string, DhtRecord[]>();
  readonly asked: Contact[] = [];

  constructor(n: number) {
    this.contacts = Array.from({ length: n }, (_, i) => ({ id: randomId(), host: '10.0.0.1', port: 1000 + i }));
  }

  truthClosest(target: Uint8Array, n = K, exclude: (c: Contact) => boolean = () => false): Contact[] {
    return this.contacts
      .filter((c) => !exclude(c))
      .sort((a, b) => compareDistance(a.id, b.id, target))
      .slice(0, n);
  }

  honest(msg: DhtMessage, to: Contact): DhtMessage {
    const target = (msg.target ?? msg.key) as Uint8Array;
    const nodes = this.truthClosest(target, K, (c) => c === to).map(toWireContact);
    if (msg.t === FIND_NODE.type) return { t: NODES.type, nodes };
    const records = (this.records.get(idKey(to.id)) ?? []).map(toWireRecord);
    return { t: VALUE.type, records, nodes };
  }

  peers(self = randomId()): LookupPeers & { failed: Contact[]; answered: Contact[] } {
    const failed: Contact[] = [];
    const answered: Contact[] = [];
    return {
      selfId: self,
      failed,
      answered,
      request: async (to, msg) => {
        this.asked.push(to);
        const script = this.scripts.get(idKey(to.id));
        const known = this.contacts.find((c) => bytesEqual(c.id, to.id) && c.port === to.port);
        if (!known) throw new DialError(`${to.host}:${to.port}`, 'no such node');
        const res = script ? await script(msg, this) : this.honest(msg, known);
        if (res === 'silent') return new Promise<DhtMessage>(() => {}); // never settles: the lookup's guard must fire
        return res;
      },
      onResponse: (c) => answered.push(c),
      onFailure: (c) => failed.push(c),
    };
  }
}

function params(world: World, target: Uint8Array, extra: Partial<LookupParams> = {}): LookupParams {
  return {
    kind: 'node',
    target,
    seeds: world.contacts.slice(0, 3),
    k: K,
    alpha: 3,
    requestTimeoutMs: 100,
    deadlineMs: 5_000,
    valuePeers: 3,
    acceptRecord: verifyRecord,
    ...extra,
  };
}

const ids = (cs: Contact[]) => cs.map((c) => idKey(c.id));

describe('lookup', () => {
  it('finds the k closest nodes, sorted by distance', async () => {
    const world = new World(200);
    const target = randomId();
    const res = await lookup(world.peers(), params(world, target));
    assert.deepEqual(ids(res.closest), ids(world.truthClosest(target)));
    assert.equal(res.stats.outcome, 'ok');
    assert.ok(res.stats.rounds >= 1 && res.stats.rounds <= res.stats.roundsToTerminate);
    assert.equal(res.stats.messages, world.asked.length);
    assert.equal(res.stats.timeouts + res.stats.failures, 0);
  });

  it('finishes despite a silent peer that never answers, and leaves it out', async () => {
    const world = new World(100);
    const target = randomId();
    const truth = world.truthClosest(target);
    const silent = truth[0]!;
    world.scripts.set(idKey(silent.id), () => 'silent');
    const peers = world.peers();
    const res = await lookup(peers, params(world, target, { requestTimeoutMs: 50 }));
    assert.equal(res.stats.outcome, 'ok');
    assert.equal(res.stats.timeouts, 1);
    assert.deepEqual(ids(peers.failed), ids([silent]));
    assert.deepEqual(ids(res.closest), ids(world.truthClosest(target, K, (c) => c === silent)));
  });

  it('does not ask contacts of nodes known to be down, so silent dead nodes cost it nothing', async () => {
    const world = new World(100);
    const target = randomId();
    const truth = world.truthClosest(target);
    // The three closest are dead (they never answer) and the failure detection knows it.
    const dead = new Set(truth.slice(0, 3).map((c) => idKey(c.id)));
    for (const key of dead) world.scripts.set(key, () => 'silent');
    const peers = { ...world.peers(), isDown: (id: Uint8Array) => dead.has(idKey(id)) };
    const started = performance.now();
    const res = await lookup(peers, params(world, target, { requestTimeoutMs: 2_000, seeds: [...truth.slice(0, 3), ...world.contacts.slice(0, 3)] }));
    assert.ok(performance.now() - started < 1_000, 'no request waited for a dead node');
    assert.equal(res.stats.timeouts, 0);
    assert.ok(res.stats.skippedDown >= 3, `skipped ${res.stats.skippedDown}`);
    assert.ok(!world.asked.some((c) => dead.has(idKey(c.id))), 'no dead node was asked');
    // Each answer names the dead nodes among its k closest, so the live ones beyond k - 3 may go unlearnt.
    assert.deepEqual(ids(res.closest).slice(0, K - 3), ids(world.truthClosest(target, K - 3, (c) => dead.has(idKey(c.id)))));
  });

  it('waits for a slow peer that answers within its timeout', async () => {
    const world = new World(100);
    const target = randomId();
    const slow = world.truthClosest(target)[0]!;
    world.scripts.set(idKey(slow.id), async (msg, w) => {
      await new Promise((r) => setTimeout(r, 30));
      return w.honest(msg, slow);
    });
    const res = await lookup(world.peers(), params(world, target, { requestTimeoutMs: 500 }));
    assert.ok(bytesEqual(res.closest[0]!.id, slow.id));
    assert.equal(res.stats.timeouts, 0);
  });

  it('returns at the deadline when every peer is silent', async () => {
    const world = new World(10);
    for (const c of world.contacts) world.scripts.set(idKey(c.id), () => 'silent');
    const res = await lookup(world.peers(), params(world, randomId(), { requestTimeoutMs: 60_000, deadlineMs: 50 }));
    assert.equal(res.stats.outcome, 'deadline');
    assert.deepEqual(res.closest, []);
    assert.equal(res.stats.messages, 3, 'alpha requests in flight, no more');
  });

  it('counts failed peers and goes on with the others', async () => {
    const world = new World(60);
    const target = randomId();
    const broken = world.truthClosest(target).slice(0, 5);
    for (const c of broken) world.scripts.set(idKey(c.id), () => { throw new Error('stream reset'); });
    const timeoutPeer = world.truthClosest(target)[5]!;
    world.scripts.set(idKey(timeoutPeer.id), () => { throw new TimeoutError('DHT request', 100); });
    const res = await lookup(world.peers(), params(world, target));
    assert.equal(res.stats.failures, 5);
    assert.equal(res.stats.timeouts, 1);
    // Peers only name the true top k (dead ones included), so the live nodes
    // among them must all be found, first and in order.
    const alive = world.truthClosest(target).filter((c) => !broken.includes(c) && c !== timeoutPeer);
    assert.deepEqual(ids(res.closest.slice(0, alive.length)), ids(alive));
    assert.ok(!res.closest.some((c) => broken.includes(c) || c === timeoutPeer));
  });

  it('is not misled by a peer lying about distances or sending garbage contacts', async () => {
    const world = new World(150);
    const target = randomId();
    const self = randomId();
    const liar = world.contacts[0]!; // a seed, so it is asked first
    let liarAsked = 0;
    world.scripts.set(idKey(liar.id), () => {
      liarAsked++;
      const far = world.truthClosest(target, 150).slice(-10).map(toWireContact); // "these are the closest"
      const garbage: unknown[] = [
        { id: new Uint8Array(31), h: '10.0.0.9', p: 1 },
        { id: target, h: '', p: 1 },
        { id: target, h: '10.0.0.9', p: 0 },
        { id: self, h: '10.0.0.9', p: 5 },
        'not a contact',
        null,
      ];
      const itself = Array.from({ length: 5 }, () => toWireContact(liar));
      const flood = Array.from({ length: 40 }, () => ({ id: randomId(), h: '10.9.9.9', p: 9 }));
      return { t: NODES.type, nodes: [...garbage, ...itself, ...far, ...flood] };
    });
    const peers = world.peers(self);
    const res = await lookup(peers, params(world, target));
    assert.equal(liarAsked, 1, 'the liar naming itself again does not get it asked again');
    assert.deepEqual(ids(res.closest), ids(world.truthClosest(target)));
    assert.ok(res.stats.rejectedContacts >= 6 + (6 + 5 + 10 + 40 - K), `rejected ${res.stats.rejectedContacts}`);
    assert.ok(!res.closest.some((c) => bytesEqual(c.id, self)));
  });

  it('survives fabricated contacts close to the target that do not exist', async () => {
    const world = new World(100);
    const target = randomId();
    const liar = world.contacts[1]!;
    world.scripts.set(idKey(liar.id), () => {
      // IDs sharing a long prefix with the target: closer than anybody real.
      const fakes = Array.from({ length: K }, (_, i) => {
        const id = randomId();
        id.set(target.subarray(0, 8));
        return { id, h: '10.6.6.6', p: 6000 + i };
      });
      return { t: NODES.type, nodes: fakes };
    });
    const res = await lookup(world.peers(), params(world, target));
    assert.equal(res.stats.failures, K, 'each fake fails at once (nobody at that address)');
    assert.deepEqual(ids(res.closest), ids(world.truthClosest(target)));
  });

  it('treats a response of the wrong type as a failure', async () => {
    const world = new World(30);
    const target = randomId();
    const odd = world.truthClosest(target)[0]!;
    world.scripts.set(idKey(odd.id), () => ({ t: VALUE.type, records: [], nodes: [] }));
    const res = await lookup(world.peers(), params(world, target));
    assert.equal(res.stats.failures, 1);
    assert.ok(!res.closest.some((c) => c === odd));
  });

  describe('FIND_VALUE', () => {
    const alice = Identity.generate();
    const bob = Identity.generate();
    const now = Date.now();

    it('merges records from several holders, highest seq per publisher, verified', async () => {
      const world = new World(120);
      const key = randomId();
      const holders = world.truthClosest(key, 5);
      const a1 = signRecord(alice, { key, value: new Uint8Array([1]), seq: 1, ttlMs: 60_000, now });
      const a2 = signRecord(alice, { key, value: new Uint8Array([2]), seq: 2, ttlMs: 60_000, now });
      const b1 = signRecord(bob, { key, value: new Uint8Array([3]), seq: 1, ttlMs: 60_000, now });
      const forged = { ...signRecord(bob, { key, value: new Uint8Array([4]), seq: 9, ttlMs: 60_000, now }), value: new Uint8Array([5]) };
      const otherKey = signRecord(alice, { key: randomId(), value: new Uint8Array([6]), seq: 99, ttlMs: 60_000, now });
      world.records.set(idKey(holders[0]!.id), [a1, b1]);
      world.records.set(idKey(holders[1]!.id), [a2, forged]);
      world.records.set(idKey(holders[2]!.id), [a1, otherKey]);
      world.records.set(idKey(holders[3]!.id), [b1]);
      const res = await lookup(world.peers(), params(world, key, { kind: 'value' }));
      assert.equal(res.stats.outcome, 'found');
      const byValue = res.records.map((r) => r.value[0]).sort();
      assert.ok(byValue.includes(3), 'bob seq 1 (the forged seq 9 is rejected)');
      assert.ok(!byValue.includes(5) && !byValue.includes(6));
      assert.ok(res.stats.rejectedRecords >= 1);
      assert.equal(res.records.length, 2, 'one record per publisher');
      assert.ok(res.stats.rounds >= 1 && res.stats.rounds <= res.stats.roundsToTerminate);
    });

    it('reports not_found after the k closest answered without records', async () => {
      const world = new World(80);
      const res = await lookup(world.peers(), params(world, randomId(), { kind: 'value' }));
      assert.equal(res.stats.outcome, 'not_found');
      assert.deepEqual(res.records, []);
      assert.equal(res.closest.length, K);
    });

    it('counts local records as found in round 0 and hides tombstones', async () => {
      const world = new World(50);
      const key = randomId();
      const live = signRecord(alice, { key, value: new Uint8Array([1]), seq: 1, ttlMs: 60_000, now });
      const tomb = signRecord(bob, { key, value: new Uint8Array(0), seq: 3, ttlMs: 60_000, now });
      const older = signRecord(bob, { key, value: new Uint8Array([7]), seq: 2, ttlMs: 60_000, now });
      world.records.set(idKey(world.truthClosest(key)[0]!.id), [older]);
      const res = await lookup(world.peers(), params(world, key, { kind: 'value', localRecords: [live, tomb] }));
      assert.equal(res.stats.rounds, 0);
      assert.deepEqual(res.records.map((r) => r.value[0]), [1], 'the tombstone beats the older record and is not returned');
    });
  });
});
