/**
 * A secured realm over real QUIC on 127.0.0.1: admission by credential,
 * per-subject permissions where requests arrive, no squatting in the DHT,
 * revocation cutting live sessions.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { issueCredential, type CredentialRole } from '../../src/auth/credential.js';
import { signRevocations } from '../../src/auth/revocation.js';
import { ALL_PERMISSIONS, type PermissionSpec } from '../../src/auth/permissions.js';
import { MaculaClient } from '../../src/client/client.js';
import { dhtKey } from '../../src/dht/key.js';
import { Identity } from '../../src/identity/identity.js';
import { MeshNode, type MeshNodeOptions } from '../../src/node/mesh-node.js';
import { encodeRegistration, registryNamespace } from '../../src/registry/registration.js';
import { waitFor } from '../helpers/testnet.js';

const REALM = 'secure';
const HOUR = 3600_000;
const quiet = { warn: () => {} };
const authority = Identity.generate();

async function credentialFor(subject: Identity, role: CredentialRole, permissions: PermissionSpec = ALL_PERMISSIONS, over: { ttlMs?: number; notBefore?: number; signer?: Identity } = {}): Promise<string[]> {
  const token = await issueCredential(over.signer ?? authority, {
    realm: REALM,
    role,
    subject: subject.publicKey,
    permissions,
    ttlMs: over.ttlMs ?? HOUR,
    ...(over.notBefore !== undefined && { notBefore: over.notBefore }),
  });
  return [token];
}

const base: MeshNodeOptions = { host: '127.0.0.1', port: 0, realm: REALM, logger: quiet, stopTimeoutMs: 1000, credentialSweepMs: 200 };

async function startNode(permissions: PermissionSpec = ALL_PERMISSIONS, extra: MeshNodeOptions = {}, identity = Identity.generate()): Promise<MeshNode> {
  const node = new MeshNode(identity, {
    ...base,
    realmKey: authority.publicKey,
    credential: await credentialFor(identity, 'node', permissions),
    ...extra,
  });
  return node.start();
}

/** A node of another authority, with a valid credential of its own realm key. */
async function startRogue(): Promise<MeshNode> {
  const rogueId = Identity.generate();
  const rogueAuthority = Identity.generate();
  return new MeshNode(rogueId, {
    ...base,
    realmKey: rogueAuthority.publicKey,
    credential: await credentialFor(rogueId, 'node', ALL_PERMISSIONS, { signer: rogueAuthority }),
  }).start();
}

async function client(node: MeshNode, permissions: PermissionSpec, over: { ttlMs?: number; notBefore?: number; signer?: Identity } = {}, identity = Identity.generate()): Promise<MaculaClient> {
  return MaculaClient.connect(
    { node: node.listenAddress!, realm: REALM, timeoutMs: 3000, credential: await credentialFor(identity, 'client', permissions, over) },
    { identity },
  );
}

describe('secured realm', () => {
  const nodes: MeshNode[] = [];
  const clients: MaculaClient[] = [];
  let a: MeshNode;
  let b: MeshNode;
  let c: MeshNode;

  before(async () => {
    a = await startNode();
    b = await startNode(ALL_PERMISSIONS, { bootstrap: [a.listenAddress!] });
    c = await startNode({ pub: { allow: ['#'] }, sub: { allow: ['#'] }, call: { allow: ['#'] } }, { bootstrap: [a.listenAddress!] });
    nodes.push(a, b, c);
    await Promise.all([b.joined(), c.joined()]);
    await waitFor(() => a.dht.table.size >= 2 && b.dht.table.size >= 2 && c.dht.table.size >= 2, 10_000, 'a full mesh');
  });

  after(async () => {
    await Promise.all(clients.map((x) => x.close()));
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('a node without a credential, with one of another authority or of another role is refused, counted, never a contact', async () => {
    const before = a.guard!.stats().refusals;
    const stranger = Identity.generate();
    const open = await new MeshNode(stranger, { ...base }).start();
    nodes.push(open);
    await assert.rejects(open.ping(a.listenAddress!), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MACULA_ERR_UNAUTHORIZED');
      assert.match(err.message, /this realm is secured: pass --credential/);
      assert.doesNotMatch(err.message, /secure"/, 'the refusal must not name anything the peer did not say');
      return true;
    });

    const rogue = await startRogue();
    nodes.push(rogue);
    await assert.rejects(rogue.ping(a.listenAddress!), { code: 'MACULA_ERR_UNAUTHORIZED' });

    // a client credential used by a node
    const wrongRoleId = Identity.generate();
    const wrongRole = new MeshNode(wrongRoleId, { ...base, realmKey: authority.publicKey, credential: await credentialFor(wrongRoleId, 'client') });
    await assert.rejects(wrongRole.start(), /own credential is not valid/);

    const after = a.guard!.stats().refusals;
    assert.equal(after.no_credential, before.no_credential + 1);
    assert.equal(after.wrong_authority, before.wrong_authority + 1);
    const ids = a.dht.table.toArray().map((x) => Buffer.from(x.id).toString('hex'));
    assert.ok(!ids.includes(open.nodeId) && !ids.includes(rogue.nodeId), 'refused nodes never enter the routing table');
  });

  it('the joining node also checks the node it dials: a member does not join a rogue node', async () => {
    const rogue = await startRogue();
    nodes.push(rogue);
    await assert.rejects(a.ping(rogue.listenAddress!), { code: 'MACULA_ERR_UNAUTHORIZED' });
  });

  it('a node whose credential has expired is refused with that reason', async () => {
    const lateId = Identity.generate();
    // Its own clock tolerance is lax enough to start; the members' default 30 s is not.
    const late = await new MeshNode(lateId, {
      ...base,
      realmKey: authority.publicKey,
      credentialClockToleranceS: 3 * 3600,
      credential: await credentialFor(lateId, 'node', ALL_PERMISSIONS, { notBefore: Date.now() - 2 * HOUR, ttlMs: HOUR }),
    }).start();
    nodes.push(late);
    const before = a.guard!.stats().refusals.expired;
    await assert.rejects(late.ping(a.listenAddress!), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MACULA_ERR_UNAUTHORIZED');
      assert.match(err.message, /expired/);
      return true;
    });
    assert.equal(a.guard!.stats().refusals.expired, before + 1);
  });

  it('an expired client credential is refused with its reason', async () => {
    await assert.rejects(client(a, ALL_PERMISSIONS, { notBefore: Date.now() - 2 * HOUR, ttlMs: HOUR }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MACULA_ERR_UNAUTHORIZED');
      assert.match(err.message, /expired/);
      return true;
    });
  });

  it('a client limited to sensors.# subscribes there, is refused elsewhere, and stays connected', async () => {
    const sub = await client(b, { sub: { allow: ['sensors.#'], deny: ['sensors.secret'] } });
    const pubId = Identity.generate();
    const pub = await client(a, { pub: { allow: ['sensors.#', 'alerts.#'] } }, {}, pubId);
    clients.push(sub, pub);
    const got: string[] = [];
    const origins = new Set<string | undefined>();
    const publishers = new Set<string | undefined>();
    await sub.subscribe('sensors.#', (m) => {
      got.push(m.topic);
      origins.add(m.origin);
      publishers.add(m.publisher);
    });
    await assert.rejects(sub.subscribe('#', () => undefined), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MACULA_ERR_FORBIDDEN');
      assert.match(err.message, /"sub" permission/);
      return true;
    });
    // One-way: the refusal comes back later, naming the publish, and the next flush rejects with it.
    await pub.publish('payroll.secret', 1);
    await assert.rejects(pub.flush(), { code: 'MACULA_ERR_FORBIDDEN', seq: 1, topic: 'payroll.secret' });
    assert.equal(pub.publishStats().failed, 1);
    await assert.rejects(sub.publishAndWait('sensors.x', 1), { code: 'MACULA_ERR_FORBIDDEN' });
    await assert.rejects(sub.peers(), { code: 'MACULA_ERR_FORBIDDEN' });
    await waitFor(async () => (await pub.publishAndWait('sensors.t1', 1)).nodes > 0, 10_000, 'the subscription to be found');
    await pub.publish('sensors.secret', 2);
    await pub.publish('sensors.t2', 3);
    await waitFor(() => got.includes('sensors.t2'), 10_000, 'delivery');
    assert.ok(!got.includes('sensors.secret'), 'a denied topic inside an allowed pattern is not delivered');
    assert.deepEqual([...origins], [pubId.nodeIdHex], 'messages name the client that published them');
    assert.deepEqual([...publishers], [a.nodeId], 'and the node it published through');
    assert.ok(sub.connected && pub.connected, 'refusals leave the clients connected');
    assert.ok(b.guard!.stats().forbidden.sub >= 1);
  });

  it('a member without serve permission gets no calls, and its record is stored nowhere', async () => {
    let onB = 0;
    let onC = 0;
    const seen: { caller: string | undefined; origin: string | undefined }[] = [];
    await b.register('payroll.get', (_args, ctx) => {
      seen.push({ caller: ctx.caller?.nodeId, origin: ctx.origin });
      return ++onB;
    });
    // c's own check refuses, so go around it: what a modified node would send
    await assert.rejects(c.register('payroll.get', () => ++onC), { code: 'MACULA_ERR_FORBIDDEN' });
    const forged = encodeRegistration('rpc:payroll.get', c.advertisedAddress, {}, 4096, c.guard!.credential);
    await c.dht.put(dhtKey(registryNamespace(REALM), 'rpc:payroll.get'), forged).catch(() => undefined);
    const key = dhtKey(registryNamespace(REALM), 'rpc:payroll.get');
    for (const n of [a, b]) {
      const held = n.dht.store.get(key).map((r) => Buffer.from(r.publisher).toString('hex'));
      assert.ok(!held.includes(Buffer.from(c.identity.publicKey).toString('hex')), 'no member stored the forged registration');
    }
    a.registry.invalidate('rpc:payroll.get');
    const providers = await a.lookup('rpc:payroll.get');
    assert.deepEqual(providers.map((p) => p.nodeId), [b.nodeId], 'lookups return only the permitted provider');
    for (let i = 0; i < 20; i++) await a.call('payroll.get', null);
    assert.equal(onB, 20);
    assert.equal(onC, 0);
    assert.deepEqual(seen[0], { caller: a.nodeId, origin: undefined }, 'a node calling for itself');
    // a light client's call names the client as well as the node it called through
    const callerId = Identity.generate();
    const viaClient = await client(a, { call: { allow: ['payroll.*'] } }, {}, callerId);
    clients.push(viaClient);
    await viaClient.call('payroll.get', null);
    assert.deepEqual(seen.at(-1), { caller: a.nodeId, origin: callerId.nodeIdHex });
    assert.ok(a.guard!.stats().recordsRefused + b.guard!.stats().recordsRefused >= 1);
  });

  it('a revocation pushed to one node cuts a live session on another and refuses it afterwards', async () => {
    const victimId = Identity.generate();
    const cred = await credentialFor(victimId, 'client', ALL_PERMISSIONS);
    const victim = await MaculaClient.connect({ node: c.listenAddress!, realm: REALM, timeoutMs: 3000, credential: cred }, { identity: victimId });
    clients.push(victim);
    await victim.subscribe('x.#', () => undefined);
    const admin = await client(a, ALL_PERMISSIONS);
    clients.push(admin);
    const list = await signRevocations(authority, REALM, [Buffer.from(victimId.publicKey).toString('hex')], Date.now());
    const t0 = Date.now();
    assert.deepEqual(await admin.revoke(list), { seq: a.guard!.revocations!.seq, adopted: true });
    await Promise.race([victim.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the revoked session was not cut within 10 s')), 10_000))]);
    const cutMs = Date.now() - t0;
    assert.ok(cutMs < 10_000);
    await assert.rejects(
      MaculaClient.connect({ node: c.listenAddress!, realm: REALM, timeoutMs: 3000, credential: cred }, { identity: victimId }),
      /revoked/,
    );
    // an older or forged list changes nothing
    assert.equal((await admin.revoke(await signRevocations(authority, REALM, [], 1))).adopted, false);
    await assert.rejects(admin.revoke(await signRevocations(Identity.generate(), REALM, [], Date.now() + 1000)), { code: 'MACULA_ERR_UNAUTHORIZED' });
  });
});
