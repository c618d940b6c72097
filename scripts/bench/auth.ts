/**
 * `auth` scenario: what a secured realm costs on the hot paths, measured
 * against an open realm in the same run, alternating open and secured,
 * three rounds each (median and min–max):
 * - client admissions per second: a light client connects (QUIC handshake,
 *   HELLO with or without a credential), attaches and closes, one at a time,
 *   each with a fresh key (so the verified-credential cache never helps);
 * - publishes per second from one node to a subscriber on another node (the
 *   subscriber's node checks the sender's `pub` permission on every
 *   PUBLISH), counted at the subscriber, 100-byte payloads, 256 in flight;
 * - credential verifications per second (jose, EdDSA), uncached and cached.
 */
import { CredentialVerifier, issueCredential } from '../../src/auth/credential.js';
import { ALL_PERMISSIONS } from '../../src/auth/permissions.js';
import { MaculaClient } from '../../src/client/client.js';
import { Identity } from '../../src/identity/identity.js';
import { MeshNode, type MeshNodeOptions } from '../../src/node/mesh-node.js';
import type { BenchContext } from '../bench.js';

const REALM = 'bench';
const ROUNDS = 3;
const quiet = { warn: () => {} };
const UNLIMITED_ADMISSION = { connectionRate: 1e6, connectionBurst: 1e6, connectionRatePerSource: 1e6, connectionBurstPerSource: 1e6 };

interface Mesh {
  a: MeshNode;
  b: MeshNode;
  credentialFor(identity: Identity, role: 'node' | 'client'): Promise<string[]>;
  stop(): Promise<void>;
}

async function mesh(secured: boolean): Promise<Mesh> {
  const authority = Identity.generate();
  const credentialFor = async (identity: Identity, role: 'node' | 'client') =>
    secured ? [await issueCredential(authority, { realm: REALM, role, subject: identity.publicKey, permissions: ALL_PERMISSIONS, ttlMs: 3600_000 })] : [];
  const start = async (extra: MeshNodeOptions = {}) => {
    const id = Identity.generate();
    // The admission rates are lifted: this measures what a handshake and a credential cost, not the limiter.
    const opts: MeshNodeOptions = { host: '127.0.0.1', port: 0, realm: REALM, logger: quiet, transport: UNLIMITED_ADMISSION, ...extra };
    if (secured) Object.assign(opts, { realmKey: authority.publicKey, credential: await credentialFor(id, 'node') });
    return new MeshNode(id, opts).start();
  };
  const a = await start();
  const b = await start({ bootstrap: [a.listenAddress!] });
  await b.joined();
  return { a, b, credentialFor, stop: async () => void (await Promise.all([a.stop(), b.stop()])) };
}

async function admissionsPerS(m: Mesh, seconds: number): Promise<number> {
  // Keys and credentials are made before the clock starts: issuing is the authority's work, not the node's.
  const ready = await Promise.all(
    Array.from({ length: Math.ceil(seconds * 400) }, async () => {
      const identity = Identity.generate();
      return { identity, credential: await m.credentialFor(identity, 'client') };
    }),
  );
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let n = 0;
  while (performance.now() < deadline && n < ready.length) {
    const { identity, credential } = ready[n]!;
    const c = await MaculaClient.connect({ node: m.a.listenAddress!, realm: REALM, ...(credential.length > 0 && { credential }) }, { identity });
    await c.close();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

async function publishesPerS(m: Mesh, seconds: number): Promise<number> {
  let received = 0;
  const sub = m.b.subscribe('bench.auth', () => void received++);
  await sub.ready;
  const payload = new Uint8Array(100);
  // warm up: subscriber lookup, connection
  for (let i = 0; i < 500; i++) await m.a.publish('bench.auth', payload);
  const deadline = performance.now() + seconds * 1000;
  const start = received;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (performance.now() < deadline) await m.a.publish('bench.auth', payload);
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 200)); // let the last messages land
  await sub.unsubscribe();
  return (received - start) / elapsed;
}

function summary(values: number[]): { median: number; min: number; max: number } {
  const s = [...values].sort((x, y) => x - y);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
}

export async function authScenario(ctx: BenchContext): Promise<void> {
  const seconds = ctx.seconds;
  ctx.log(`open vs secured realm, 2 nodes over QUIC on 127.0.0.1, ${ROUNDS} alternating rounds of ${seconds} s per figure`);
  const results: Record<string, number[]> = { admissions_open: [], admissions_secured: [], publishes_open: [], publishes_secured: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const secured of [false, true]) {
      const m = await mesh(secured);
      try {
        const kind = secured ? 'secured' : 'open';
        results[`admissions_${kind}`]!.push(await admissionsPerS(m, seconds));
        results[`publishes_${kind}`]!.push(await publishesPerS(m, seconds));
      } finally {
        await m.stop();
      }
    }
  }
  for (const [metric, values] of Object.entries(results)) {
    const { median, min, max } = summary(values);
    const unit = metric.startsWith('admissions') ? 'clients/s' : 'msgs/s';
    ctx.report({ metric: `${metric}_per_s`, value: median, unit });
    ctx.report({ metric: `${metric}_per_s_min`, value: min, unit });
    ctx.report({ metric: `${metric}_per_s_max`, value: max, unit });
  }
  ctx.report({ metric: 'secured_vs_open_admissions', value: summary(results.admissions_secured!).median / summary(results.admissions_open!).median, unit: 'ratio' });
  ctx.report({ metric: 'secured_vs_open_publishes', value: summary(results.publishes_secured!).median / summary(results.publishes_open!).median, unit: 'ratio' });

  // Verification alone: distinct chains (every one a cache miss) vs the same chain again (a hit).
  const authority = Identity.generate();
  const N = 2000;
  const subjects = Array.from({ length: N }, () => Identity.generate());
  const chains = await Promise.all(
    subjects.map(async (s) => [await issueCredential(authority, { realm: REALM, role: 'client', subject: s.publicKey, permissions: ALL_PERMISSIONS, ttlMs: 3600_000 })]),
  );
  const verifier = new CredentialVerifier({ realm: REALM, authority: authority.publicKey, cacheSize: N });
  let t0 = performance.now();
  for (let i = 0; i < N; i++) await verifier.verify(chains[i]!, subjects[i]!.nodeId, 'client');
  ctx.report({ metric: 'verify_uncached_per_s', value: N / ((performance.now() - t0) / 1000), unit: 'verifications/s' });
  t0 = performance.now();
  for (let i = 0; i < N * 10; i++) await verifier.verify(chains[i % N]!, subjects[i % N]!.nodeId, 'client');
  ctx.report({ metric: 'verify_cached_per_s', value: (N * 10) / ((performance.now() - t0) / 1000), unit: 'verifications/s' });
}
