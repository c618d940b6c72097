import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  Identity,
  KEY_FILE_NAME,
  loadOrCreateIdentity,
  nodeIdFromPublicKey,
  toHex,
  verifySignature,
} from '../../src/identity/identity.js';
import { IdentityError } from '../../src/util/errors.js';
import { createHash } from 'node:crypto';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'macula-id-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('identity', () => {
  it('node ID is the SHA-256 of the raw public key', () => {
    const id = Identity.generate();
    assert.equal(id.publicKey.length, 32);
    assert.equal(id.nodeId.length, 32);
    assert.deepEqual(id.nodeId, new Uint8Array(createHash('sha256').update(id.publicKey).digest()));
    assert.equal(id.nodeIdHex, toHex(nodeIdFromPublicKey(id.publicKey)));
    assert.match(id.nodeIdHex, /^[0-9a-f]{64}$/);
  });

  it('signs and verifies; a changed byte or another key fails', () => {
    const id = Identity.generate();
    const data = new TextEncoder().encode('hello mesh');
    const sig = id.sign(data);
    assert.equal(sig.length, 64);
    assert.equal(verifySignature(id.publicKey, data, sig), true);
    const tampered = Uint8Array.from(data);
    tampered[0] ^= 1;
    assert.equal(verifySignature(id.publicKey, tampered, sig), false);
    assert.equal(verifySignature(Identity.generate().publicKey, data, sig), false);
    assert.equal(verifySignature(new Uint8Array(5), data, sig), false);
  });

  it('round-trips through PEM and through the seed', () => {
    const id = Identity.generate();
    assert.equal(Identity.fromPem(id.toPem()).nodeIdHex, id.nodeIdHex);
    const proto = id.libp2pPrivateKeyProto();
    assert.deepEqual([...proto.subarray(0, 4)], [0x08, 0x01, 0x12, 0x40]);
    assert.deepEqual(proto.subarray(36), id.publicKey);
    assert.equal(Identity.fromSeed(proto.subarray(4, 36)).nodeIdHex, id.nodeIdHex);
  });

  it('creates the key file with mode 0600 on first start and reuses it', async () => {
    const dir = join(await tempDir(), 'nested', 'data');
    const first = await loadOrCreateIdentity(dir);
    assert.equal(first.created, true);
    const st = await stat(join(dir, KEY_FILE_NAME));
    assert.equal(st.mode & 0o777, 0o600);
    const second = await loadOrCreateIdentity(dir);
    assert.equal(second.created, false);
    assert.equal(second.identity.nodeIdHex, first.identity.nodeIdHex);
  });

  it('refuses a corrupt key file and leaves it untouched', async () => {
    const dir = await tempDir();
    const file = join(dir, KEY_FILE_NAME);
    await writeFile(file, 'not a key', { mode: 0o600 });
    await assert.rejects(loadOrCreateIdentity(dir), (err: unknown) => {
      assert.ok(err instanceof IdentityError);
      assert.equal(err.code, 'MACULA_ERR_IDENTITY');
      assert.match(err.message, /corrupt/);
      assert.ok(err.message.includes(file));
      return true;
    });
    assert.equal(await readFile(file, 'utf8'), 'not a key');
  });

  it('refuses a key of another algorithm', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const dir = await tempDir();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(dir, KEY_FILE_NAME), privateKey.export({ format: 'pem', type: 'pkcs8' }));
    await assert.rejects(loadOrCreateIdentity(dir), IdentityError);
  });

  it('reports an unreadable key file instead of replacing it', async () => {
    // A directory where the key file should be: unreadable as a file, even for root.
    const dir = await tempDir();
    await mkdir(join(dir, KEY_FILE_NAME));
    await assert.rejects(loadOrCreateIdentity(dir), (err: unknown) => {
      assert.ok(err instanceof IdentityError);
      assert.match(err.message, /cannot read the node key/);
      return true;
    });
    assert.ok((await stat(join(dir, KEY_FILE_NAME))).isDirectory());
  });
});
