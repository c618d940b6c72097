/**
 * Web sessions in a secured realm: a session proves its client key with a
 * signature over the node's challenge, its node ID is SHA-256 of that key,
 * and the credential admission of QUIC clients applies unchanged: from
 * Node (the package's WebTransport over HTTP/2) and from headless Chromium
 * (the served client library over the WebSocket mapping, WebCrypto's Ed25519).
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { issueCredential } from '../../src/auth/credential.js';
import { formatCredentialFile } from '../../src/auth/files.js';
import { ALL_PERMISSIONS, type PermissionSpec } from '../../src/auth/permissions.js';
import { Identity } from '../../src/identity/identity.js';
import type { Sample } from '../../src/metrics/metrics.js';
import { WEB_METRICS } from '../../src/metrics/web-metrics.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import type { MaculaWebClient, WebMessage } from '../../src/web/client/client.js';
import { CHALLENGE_BYTES, CHALLENGE_MESSAGE_BYTES, PROOF_ACCEPTED, PROOF_REFUSED, proofMessage } from '../../src/web/key-proof.js';
import { STREAM_ROLE_CLIENT_PROOF } from '../../src/web/stream-roles.js';
import { launchChromium } from '../helpers/chromium.js';
import { connectWeb, rawSession } from '../helpers/web.js';

const REALM = 'secure-web';
const HOUR = 3600_000;
const quiet = { warn: () => {} };
const authority = Identity.generate();
const limited: PermissionSpec = { pub: { allow: ['ok.#'] }, sub: { allow: ['ok.#'] } };

async function credentialFor(subject: Identity, role: 'node' | 'client', permissions: PermissionSpec = ALL_PERMISSIONS): Promise<string[]> {
  return [await issueCredential(authority, { realm: REALM, role, subject: subject.publicKey, permissions, ttlMs: HOUR })];
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Reads exactly `n` bytes from a raw stream reader. */
async function readBytes(reader: ReadableStreamDefaultReader<Uint8Array>, n: number): Promise<Uint8Array | null> {
  let buf = new Uint8Array(0);
  while (buf.length < n) {
    const { value, done } = await reader.read();
    if (done || !value) return null;
    buf = new Uint8Array(Buffer.concat([buf, value]));
  }
  return buf;
}

describe('web sessions in a secured realm', { timeout: 120_000 }, () => {
  let node: MeshNode;
  let url: string;
  let hash: string;
  const clients: MaculaWebClient[] = [];

  before(async () => {
    const id = Identity.generate();
    node = new MeshNode(id, {
      host: '127.0.0.1',
      port: 0,
      realm: REALM,
      realmKey: authority.publicKey,
      credential: await credentialFor(id, 'node'),
      logger: quiet,
      stopTimeoutMs: 1000,
      web: { port: 0, host: '127.0.0.1' },
    });
    await node.start();
    url = node.web!.url;
    hash = node.web!.certificate.sha256;
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await node?.stop();
  });

  async function web(init: Parameters<typeof connectWeb>[2]): Promise<MaculaWebClient> {
    const c = await connectWeb(url, hash, { realm: REALM, timeoutMs: 5000, ...init });
    clients.push(c);
    return c;
  }

  it('admits a session that proves the key its credential names, within its permissions only', async () => {
    const key = Identity.generate();
    const w = await web({ identity: { privateKey: key.ed25519SecretKey() }, credential: await credentialFor(key, 'client', limited) });
    const got: WebMessage[] = [];
    await w.subscribe('ok.#', (m) => got.push(m));
    await w.publish('ok.temp', 21.5);
    await until('its own message', () => got.length === 1);
    assert.equal(got[0]!.data, 21.5);
    assert.equal(got[0]!.origin, key.nodeIdHex, 'the session is named by SHA-256 of the key it proved');

    // Publishes are one-way: the refusal comes back asynchronously, and flush() reports it.
    await w.publish('payroll.secret', 1);
    await assert.rejects(w.flush(), { code: 'MACULA_ERR_FORBIDDEN' });
    await assert.rejects(w.publishAndWait('payroll.secret', 1), { code: 'MACULA_ERR_FORBIDDEN' });
    await assert.rejects(w.subscribe('payroll.#'), { code: 'MACULA_ERR_FORBIDDEN' });
    assert.ok(w.connected, 'a forbidden request leaves the session connected');
    await w.publish('ok.temp', 22);
    await until('the next message', () => got.length === 2);
  });

  it('takes key and credential from the text of a client creds file', async () => {
    const key = Identity.generate();
    const creds = formatCredentialFile(await credentialFor(key, 'client', limited), key, 'web test');
    const w = await web({ credential: creds });
    await w.publish('ok.creds', true);
    await w.flush();
    await w.publish('other', 1);
    await assert.rejects(w.flush(), { code: 'MACULA_ERR_FORBIDDEN' });
  });

  it('admits a browser that proves its key with WebCrypto in headless Chromium, from a creds file', async () => {
    const key = Identity.generate();
    const creds = formatCredentialFile(await credentialFor(key, 'client', limited), key, 'browser');
    const { context, profile } = await launchChromium();
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      // A page of the node's origin: a secure context, where the client library and WebCrypto load.
      await page.goto(`${url}info.json`);
      const result = await page.evaluate(async (text) => {
        const path = '/macula-client.js';
        const lib = (await import(path)) as typeof import('../../src/web/client/browser.js');
        const client = await lib.connect({ credential: text });
        const got: unknown[] = [];
        await client.subscribe('ok.#', (m) => got.push([m.data, m.origin]));
        await client.publish('ok.browser', 7);
        await client.publish('payroll.x', 1);
        const forbidden = await client.flush().then(
          () => 'published',
          (e: { code?: string }) => e.code,
        );
        while (got.length === 0) await new Promise((r) => setTimeout(r, 20));
        const connected = client.connected;
        await client.close();
        return { got, forbidden, connected };
      }, creds);
      assert.deepEqual(result, { got: [[7, key.nodeIdHex]], forbidden: 'MACULA_ERR_FORBIDDEN', connected: true });
    } finally {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    }
  });

  it('refuses at admission a session without a key proof, or whose credential names another key', async () => {
    const key = Identity.generate();
    const credential = await credentialFor(key, 'client');
    await assert.rejects(connectWeb(url, hash, { realm: REALM, credential }), { code: 'MACULA_ERR_UNAUTHORIZED' });
    await assert.rejects(connectWeb(url, hash, { realm: REALM, credential, identity: { privateKey: Identity.generate().ed25519SecretKey() } }), {
      code: 'MACULA_ERR_UNAUTHORIZED',
    });
  });

  it('refuses and counts a key proof whose signature does not verify', async () => {
    const before = node.web!.stats().refused.bad_key_proof;
    const key = Identity.generate();
    // The private key of one key pair with the public key of another.
    const identity = { privateKey: key.ed25519SecretKey().subarray(0, 32), publicKey: Identity.generate().publicKey };
    await assert.rejects(connectWeb(url, hash, { realm: REALM, identity, credential: await credentialFor(key, 'client') }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MACULA_ERR_KEY_PROOF');
      assert.match(err.message, /publicKey belongs to identity\.privateKey/);
      return true;
    });
    // Signed for another realm: the same refusal.
    await assert.rejects(connectWeb(url, hash, { realm: 'elsewhere', identity: { privateKey: key.ed25519SecretKey() } }), { code: 'MACULA_ERR_KEY_PROOF' });
    assert.equal(node.web!.stats().refused.bad_key_proof, before + 2);
    const refused = WEB_METRICS.find((m) => m.name === 'macula_web_refused_total')!.value(node.web!.stats()) as Sample[];
    assert.deepEqual(refused.find(([labels]) => labels.reason === 'bad_key_proof')?.[1], before + 2);
  });

  it('refuses a proof replayed on another session: each session has its own challenge', async () => {
    const key = Identity.generate();
    const nodeId = Buffer.from(node.nodeId, 'hex');
    const before = node.web!.stats().refused.bad_key_proof;

    async function openProof(): Promise<{ challenge: Uint8Array; reader: ReadableStreamDefaultReader<Uint8Array>; writer: WritableStreamDefaultWriter<Uint8Array> }> {
      const session = await rawSession(url, hash);
      const stream = await session.createBidirectionalStream();
      const writer = stream.writable.getWriter();
      const reader = stream.readable.getReader();
      await writer.write(Uint8Array.of(STREAM_ROLE_CLIENT_PROOF));
      const sent = (await readBytes(reader, CHALLENGE_MESSAGE_BYTES))!;
      assert.deepEqual(Buffer.from(sent.subarray(CHALLENGE_BYTES)), nodeId, 'the node names itself after the challenge');
      return { challenge: sent.subarray(0, CHALLENGE_BYTES), reader, writer };
    }

    const first = await openProof();
    const proof = new Uint8Array(Buffer.concat([key.publicKey, key.sign(proofMessage(first.challenge, nodeId, REALM))]));
    await first.writer.write(proof);
    assert.equal((await readBytes(first.reader, 1))![0], PROOF_ACCEPTED);

    const second = await openProof();
    assert.notDeepEqual(second.challenge, first.challenge);
    await second.writer.write(proof);
    assert.equal((await readBytes(second.reader, 1))![0], PROOF_REFUSED);
    await until('the replay to be counted', () => node.web!.stats().refused.bad_key_proof === before + 1);
    await first.writer.close().catch(() => undefined);
  });
});
