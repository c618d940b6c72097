/**
 * The web gateway from Node: the package's WebTransport client over HTTP/2
 * reaches the same light-client gateway as QUIC clients (same messages,
 * limits and errors), and a session that sends garbage or oversized frames
 * is refused and counted while the node keeps serving.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MaculaClient } from '../../src/client/client.js';
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { PublishError, type MaculaWebClient, type WebMessage } from '../../src/web/client/client.js';
import { STREAM_ROLE_CLIENT } from '../../src/web/stream-roles.js';
import { connectWeb, rawSession } from '../helpers/web.js';

const quiet = { warn: () => {} };

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function frame(body: Uint8Array, declared = body.length): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, declared);
  out.set(body, 4);
  return out;
}

describe('web gateway (WebTransport over HTTP/2 from Node)', { timeout: 120_000 }, () => {
  let a: MeshNode;
  let b: MeshNode;
  let url: string;
  let hash: string;
  const clients: { close(): Promise<void> }[] = [];
  const protocolErrors: string[] = [];

  before(async () => {
    a = new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet, web: { port: 0, host: '127.0.0.1' }, gateway: { maxClients: 6 } });
    a.on('protocol-error', (err: { kind: string }) => protocolErrors.push(err.kind));
    await a.start();
    b = new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet, bootstrap: [a.listenAddress!] });
    await b.start();
    await b.joined();
    url = a.web!.url;
    hash = a.web!.certificate.sha256;
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await b?.stop();
    await a?.stop();
  });

  async function web(): Promise<MaculaWebClient> {
    const c = await connectWeb(url, hash);
    clients.push(c);
    return c;
  }

  it('serves a short-lived ECDSA certificate whose SHA-256 it publishes', async () => {
    await assert.rejects(fetch(`${url}info.json`), 'a client that does not pin it refuses the self-signed certificate');
    const cert = new X509Certificate(a.web!.certificate.cert);
    assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 12 && days <= 14, `valid for ${days} days`);
    assert.equal(cert.fingerprint256.replaceAll(':', '').toLowerCase(), hash);
    assert.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.deepEqual(a.web!.modes, { http3: false, http2: true, websocket: true });
  });

  it('pub/sub and RPC through the web gateway reach QUIC clients and the mesh, and back', async () => {
    const w = await web();
    assert.equal(w.info!.nodeId, a.nodeId);
    const quic = await MaculaClient.connect({ node: { host: '127.0.0.1', port: b.listenAddress!.port } });
    clients.push(quic);

    // A browser-side subscription gets what a QUIC client publishes on another node.
    const sub = await w.subscribe('web.test.#');
    const it = sub[Symbol.asyncIterator]();
    await until('the subscription to reach node b', async () => (await quic.publishAndWait('web.test.probe', 0)).nodes > 0);
    await quic.publish('web.test.one', { n: 1 });
    let m: WebMessage;
    do m = (await it.next()).value as WebMessage;
    while (m.topic === 'web.test.probe');
    assert.deepEqual([m.topic, m.data], ['web.test.one', { n: 1 }]);

    // A QUIC client's subscription gets what the web client publishes.
    const got: unknown[] = [];
    await quic.subscribe('from.web.#', (msg) => got.push(msg.data));
    await until('a subscriber on node b', async () => (await w.publishAndWait('from.web.probe', 'p')).nodes > 0);
    await w.publish('from.web.x', 'hello from the web');
    await until('the message at the QUIC client', () => got.includes('hello from the web'));

    // RPC both ways: the web client serves, a QUIC client on another node calls; and the reverse.
    await w.serve('web.echo', (args, ctx) => {
      if (ctx.headers?.trace !== undefined) ctx.resultHeaders.trace = `seen ${ctx.headers.trace}`;
      return { echoed: args };
    });
    await until('web.echo to be callable', async () => {
      try {
        return ((await quic.call('web.echo', 'hi')) as { echoed: unknown }).echoed === 'hi';
      } catch {
        return false;
      }
    });
    // The caller's headers reach the web client's handler, and its result headers come back.
    let resultHeaders: Record<string, string> | undefined;
    await quic.call('web.echo', 'h', { headers: { trace: 't1' }, onResultHeaders: (h) => (resultHeaders = h) });
    assert.deepEqual(resultHeaders, { trace: 'seen t1' });
    await quic.serve('quic.upper', (args, ctx) => String(args).toUpperCase() + (ctx.headers?.suffix ?? ''));
    await until('quic.upper to be callable', async () => (await w.call('quic.upper', 'abc').catch(() => '')) === 'ABC');
    assert.equal(await w.call('quic.upper', 'abc', { headers: { suffix: '!' } }), 'ABC!');

    // Messages far over the package's 16 KiB default windows flow both ways.
    const big = 'x'.repeat(300_000);
    assert.equal(((await quic.call('web.echo', big)) as { echoed: string }).echoed.length, big.length);
    assert.equal(((await w.call('quic.upper', big)) as string).length, big.length);

    // The same gateway: the session counts as one of its clients, its errors are the gateway's.
    const stats = await w.stats();
    assert.ok((stats.gateway as { clients: number }).clients >= 1);
    assert.equal((stats.web as { sessions: number }).sessions >= 1, true);
    await assert.rejects(w.call('no.such.procedure', undefined, { timeoutMs: 1500 }), (err: { code?: string }) => /MACULA_ERR_(NO_PROVIDERS|TIMEOUT)/.test(err.code ?? ''));
    await assert.rejects(w.subscribe('bad..pattern'), (err: { code?: string }) => err.code !== undefined);
    await w.close();
    await quic.close();
  });

  it('runs: a web client publishes a pipelined burst as runs and receives runs, every message in order with consecutive numbers', async () => {
    const w = await connectWeb(url, hash);
    const quic = await MaculaClient.connect({ node: { host: '127.0.0.1', port: b.listenAddress!.port } });
    try {
      const TOTAL = 2000;
      const lanes = async (publish: (i: number) => Promise<void>) => {
        let next = 0;
        await Promise.all(Array.from({ length: 64 }, async () => {
          while (next < TOTAL) await publish(next++);
        }));
      };
      // Node b → node a → the web client: runs all the way.
      const atWeb: WebMessage[] = [];
      await w.subscribe('runs.to.web', (m) => void atWeb.push(m));
      await until('the subscription to reach node b', async () => (await quic.publishAndWait('runs.to.web', -1)).nodes > 0);
      await until('the probe at the web client', () => atWeb.length > 0);
      atWeb.length = 0;
      const forwardedRuns = a.gateway.stats().forwardedRuns;
      await lanes((i) => quic.publish('runs.to.web', i));
      await quic.flush();
      await until('every message at the web client', () => atWeb.length === TOTAL, 30_000);
      assert.deepEqual(atWeb.map((m) => [m.data, m.seq! - atWeb[0]!.seq!]), Array.from({ length: TOTAL }, (_, i) => [i, i]));
      assert.ok(a.gateway.stats().forwardedRuns > forwardedRuns, 'the web client got runs');

      // The web client → node a → node b → a QUIC client.
      const atQuic: unknown[] = [];
      await quic.subscribe('runs.from.web', (m) => void atQuic.push(m.data));
      await until('a subscriber on node b', async () => (await w.publishAndWait('runs.from.web', -1)).nodes > 0);
      await until('the probe at the QUIC client', () => atQuic.length > 0);
      atQuic.length = 0;
      await lanes((i) => w.publish('runs.from.web', i));
      await w.flush();
      await until('every message at the QUIC client', () => atQuic.length === TOTAL, 30_000);
      assert.deepEqual(atQuic, Array.from({ length: TOTAL }, (_, i) => i));
      assert.ok(w.publishStats().runs > 0, 'the web client sent runs');
    } finally {
      await w.close();
      await quic.close();
    }
  });

  it('shares maxClients with QUIC clients', async () => {
    const before = a.gateway.stats().refusedByReason.max_clients;
    const held: { close(): Promise<void> }[] = [];
    try {
      for (let i = a.gateway.clients; i < a.gateway.maxClients; i++) held.push(await web());
      await assert.rejects(connectWeb(url, hash), (err: { code?: string }) => err.code === 'MACULA_ERR_TOO_MANY_CLIENTS');
      await assert.rejects(MaculaClient.connect({ node: a.listenAddress! }), (err: { code?: string }) => err.code === 'MACULA_ERR_TOO_MANY_CLIENTS');
      assert.equal(a.gateway.stats().refusedByReason.max_clients, before + 2);
    } finally {
      for (const c of held) await c.close();
    }
    await until('the slots to be released', () => a.gateway.clients === 0);
  });

  it('refuses garbage, oversized frames, unknown streams and HELLO as a mesh node, counts them, and keeps serving', async () => {
    const errorsBefore = protocolErrors.length;
    const refusedBefore = a.web!.stats().refused;

    // Garbage: a frame whose body is not CBOR.
    const s1 = await rawSession(url, hash);
    const st1 = await s1.createBidirectionalStream();
    const w1 = st1.writable.getWriter();
    await w1.write(Uint8Array.of(STREAM_ROLE_CLIENT));
    await w1.write(frame(new Uint8Array([0xff, 0xfe, 0xfd, 0x00, 0x13, 0x37])));
    await until('the garbage session to be closed', async () => (await Promise.race([s1.closed.then(() => true, () => true), new Promise((r) => setTimeout(() => r(false), 50))])) as boolean);

    // Oversized: a frame header announcing 64 MiB.
    const s2 = await rawSession(url, hash);
    const st2 = await s2.createBidirectionalStream();
    const w2 = st2.writable.getWriter();
    await w2.write(Uint8Array.of(STREAM_ROLE_CLIENT));
    await w2.write(frame(new Uint8Array(16), 64 * 1024 * 1024));
    await until('the oversized session to be closed', async () => (await Promise.race([s2.closed.then(() => true, () => true), new Promise((r) => setTimeout(() => r(false), 50))])) as boolean);
    await until('both violations to be counted', () => protocolErrors.length >= errorsBefore + 2);
    assert.ok(protocolErrors.slice(errorsBefore).includes('frame_too_large'), protocolErrors.join());

    // A stream with an unknown role byte, and more streams than a session may open.
    const s3 = await rawSession(url, hash);
    const bad = (await s3.createBidirectionalStream()).writable.getWriter();
    await bad.write(Uint8Array.of(0x7f));
    for (let i = 0; i < a.web!.maxStreamsPerSession + 2; i++) {
      const w = (await s3.createBidirectionalStream()).writable.getWriter();
      await w.write(Uint8Array.of(STREAM_ROLE_CLIENT));
    }
    await until('the refused streams to be counted', () => {
      const r = a.web!.stats().refused;
      return r.bad_stream > refusedBefore.bad_stream && r.max_streams >= refusedBefore.max_streams + 1;
    });
    s3.close();

    // A web session may not say HELLO as a mesh node.
    const s4 = await rawSession(url, hash);
    const st4 = await s4.createBidirectionalStream();
    const w4 = st4.writable.getWriter();
    const { encodeBody } = await import('../../src/wire/codec.js');
    await w4.write(Uint8Array.of(STREAM_ROLE_CLIENT));
    await w4.write(frame(encodeBody({ v: 1, t: 1, id: 1, realm: 'default', role: 'node', port: 4242 })));
    const reader = st4.readable.getReader();
    let text = '';
    await until('the refusal', async () => {
      const { value, done } = await reader.read();
      if (value) text += Buffer.from(value).toString('latin1');
      return done || text.includes('MACULA_ERR_NOT_A_CLIENT');
    });
    assert.match(text, /MACULA_ERR_NOT_A_CLIENT/);
    assert.equal(a.dht.table.size, 1, 'the web session did not become a mesh contact');

    // The node still serves web and QUIC clients.
    const w = await web();
    assert.equal(typeof (await w.ping()), 'number');
    assert.deepEqual(await w.publishAndWait('after.garbage', 1), { nodes: 0, local: 0 });
    await w.close();
  });

  it('publishes one-way under the node\'s window: 2,000 messages arrive in order, flush() waits for all, a refused one is reported later and counted', async () => {
    const WINDOW = 64;
    const n = new MeshNode(Identity.generate(), {
      host: '127.0.0.1',
      port: 0,
      logger: quiet,
      web: { port: 0, host: '127.0.0.1' },
      pubsub: { maxPayloadBytes: 1024 },
      gateway: { publishWindow: WINDOW, subscribeReadyTimeoutMs: 200 },
    });
    await n.start();
    try {
      const sub = await connectWeb(n.web!.url, n.web!.certificate.sha256);
      const pub = await connectWeb(n.web!.url, n.web!.certificate.sha256);
      const got: WebMessage[] = [];
      await sub.subscribe('flow.#', (m) => void got.push(m));
      assert.equal(pub.info!.limits.publishWindow, WINDOW);

      const TOTAL = 2000;
      for (let i = 0; i < TOTAL; i++) await pub.publish('flow.n', i, { headers: { k: String(i) } });
      assert.ok(pub.publishStats().pending <= WINDOW, 'never more than the window unacknowledged');
      await pub.flush();
      assert.deepEqual(pub.publishStats(), { sent: TOTAL, runs: 0, acknowledged: TOTAL, failed: 0, pending: 0, pendingBytes: 0, waiting: 0, window: WINDOW });
      await until('every message at the subscriber', () => got.length === TOTAL);
      assert.deepEqual(got.map((m) => m.data), Array.from({ length: TOTAL }, (_, i) => i), 'in order');
      assert.equal(got[TOTAL - 1]!.headers?.k, String(TOTAL - 1));

      // A publish the node refuses (over its payload limit) resolves at once; its failure comes later.
      const errors: PublishError[] = [];
      pub.on('publish-error', (err) => errors.push(err));
      await pub.publish('flow.big', 'x'.repeat(4096));
      await pub.publish('flow.after', 'ok');
      await assert.rejects(pub.flush(), (err: unknown) => {
        assert.ok(err instanceof PublishError);
        assert.equal(err.code, 'MACULA_ERR_INVALID_PAYLOAD');
        assert.equal(err.seq, TOTAL + 1);
        assert.equal(err.topic, 'flow.big');
        return true;
      });
      assert.equal(errors.length, 1);
      assert.equal(pub.publishStats().failed, 1);
      assert.equal(n.gateway.stats().publishFailures, 1);
      await pub.flush(); // reported once
      await until('the message after the refused one', () => got.at(-1)?.data === 'ok');

      // What the client itself can tell is wrong is refused before anything is sent.
      await assert.rejects(pub.publish('bad..topic', 1), (err: { code?: string }) => err.code === 'MACULA_ERR_INVALID_TOPIC');
      await assert.rejects(pub.publish('flow.u', undefined), (err: { code?: string }) => err.code === 'MACULA_ERR_INVALID_PAYLOAD');
      assert.equal(pub.publishStats().sent, TOTAL + 2);
      await pub.close();
      await assert.rejects(pub.publish('flow.n', 1), (err: { code?: string }) => err.code === 'MACULA_ERR_STOPPED');
      await sub.close();
    } finally {
      await n.stop();
    }
  });

  it('refuses sessions over maxSessions, counts them, and serves the ones it holds', async () => {
    const n = new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet, web: { port: 0, host: '127.0.0.1', maxSessions: 1 } });
    await n.start();
    try {
      const first = await connectWeb(n.web!.url, n.web!.certificate.sha256);
      const second = await rawSession(n.web!.url, n.web!.certificate.sha256).catch(() => undefined);
      if (second) await until('the second session to be closed', async () => (await Promise.race([second.closed.then(() => true, () => true), new Promise((r) => setTimeout(() => r(false), 50))])) as boolean);
      assert.equal(n.web!.stats().refused.max_sessions, 1);
      assert.equal(typeof (await first.ping()), 'number');
      await first.close();
    } finally {
      await n.stop();
    }
  });

  it('says which web port it cannot listen on', async () => {
    const n = new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet, web: { port: a.web!.address!.port, host: '127.0.0.1' } });
    try {
      await assert.rejects(n.start(), (err: { code?: string; message?: string }) => err.code === 'MACULA_ERR_CONFIG' && /cannot listen on 127\.0\.0\.1:\d+.*--web-port/.test(err.message ?? ''));
    } finally {
      await n.stop();
    }
  });

  it('replaces its certificate before it expires: new sessions pin the new hash', async () => {
    const old = a.web!.certificate.sha256;
    assert.equal(await a.web!.rotateIfDue(), false, 'a fresh certificate is kept');
    assert.equal(await a.web!.rotateIfDue(a.web!.certificate.notAfter.getTime() - 36 * 3600_000), true, 'one with 36 h left is replaced');
    const next = a.web!.certificate;
    assert.notEqual(next.sha256, old);
    assert.equal(a.web!.stats().certificate.rotations, 1);
    const w = await connectWeb(url, next.sha256);
    clients.push(w);
    assert.equal(w.info!.nodeId, a.nodeId);
    await assert.rejects(connectWeb(url, old, { timeoutMs: 3000 }), (err: { code?: string }) => err.code === 'MACULA_ERR_UNREACHABLE');
  });
});
