import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as edSign,
  verify as edVerify,
  type KeyObject,
} from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { IdentityError } from '../util/errors.js';

export const NODE_ID_BYTES = 32;
export const KEY_FILE_NAME = 'node.key';

// DER prefixes of Ed25519 keys: the raw 32 bytes follow them.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Node ID = SHA-256 of the raw 32-byte Ed25519 public key. */
export function nodeIdFromPublicKey(publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(publicKey).digest());
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** A raw 32-byte Ed25519 public key written as 64 hex digits (either case), or undefined for anything else. */
export function publicKeyFromHex(hex: string): Uint8Array | undefined {
  return /^[0-9a-fA-F]{64}$/.test(hex) ? fromHex(hex.toLowerCase()) : undefined;
}

export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** A short form for humans (tables, logs): the first 12 hex digits. */
export function shortId(id: Uint8Array | string): string {
  return (typeof id === 'string' ? id : toHex(id)).slice(0, 12);
}

export function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** Verifies an Ed25519 signature made by the holder of `publicKey` (raw 32 bytes). */
export function verifySignature(publicKey: Uint8Array | KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = publicKey instanceof Uint8Array ? publicKeyObject(publicKey) : publicKey;
    return edVerify(null, data, key, signature);
  } catch {
    return false;
  }
}

/** The node's Ed25519 key pair and the node ID derived from it. */
export class Identity {
  readonly publicKey: Uint8Array;
  readonly nodeId: Uint8Array;
  readonly nodeIdHex: string;
  readonly #privateKey: KeyObject;
  readonly #seed: Uint8Array;

  private constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    this.#seed = new Uint8Array(pkcs8.subarray(pkcs8.length - 32));
    const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
    this.publicKey = new Uint8Array(spki.subarray(spki.length - 32));
    this.nodeId = nodeIdFromPublicKey(this.publicKey);
    this.nodeIdHex = toHex(this.nodeId);
  }

  static generate(): Identity {
    return new Identity(generateKeyPairSync('ed25519').privateKey);
  }

  /** From the raw 32-byte Ed25519 seed (the private key proper). */
  static fromSeed(seed: Uint8Array): Identity {
    if (seed.length !== 32) throw new IdentityError(`an Ed25519 seed is 32 bytes, got ${seed.length}`);
    const der = Buffer.concat([PKCS8_ED25519_PREFIX, seed]);
    return new Identity(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  }

  static fromPem(pem: string): Identity {
    const key = createPrivateKey({ key: pem, format: 'pem' });
    if (key.asymmetricKeyType !== 'ed25519') {
      throw new IdentityError(`the key is ${key.asymmetricKeyType ?? 'unknown'}, an Ed25519 key is required`);
    }
    return new Identity(key);
  }

  toPem(): string {
    return this.#privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  /** The private key as a KeyObject, for libraries that sign with it (credential tokens). */
  privateKeyObject(): KeyObject {
    return this.#privateKey;
  }

  sign(data: Uint8Array): Uint8Array {
    return new Uint8Array(edSign(null, data, this.#privateKey));
  }

  /** The key in libsodium's layout (seed ‖ public key), for the relayed connections' Noise handshake. */
  ed25519SecretKey(): Uint8Array {
    const out = new Uint8Array(64);
    out.set(this.#seed, 0);
    out.set(this.publicKey, 32);
    return out;
  }

  /**
   * The key in libp2p's protobuf encoding (`PrivateKey { Type = Ed25519, Data = seed || public }`),
   * which the QUIC stack uses for its TLS certificate.
   */
  libp2pPrivateKeyProto(): Uint8Array {
    const out = new Uint8Array(4 + 64);
    out.set([0x08, 0x01, 0x12, 0x40]);
    out.set(this.#seed, 4);
    out.set(this.publicKey, 36);
    return out;
  }
}

/** The per-user data directory: $MACULA_DATA_DIR, else $XDG_DATA_HOME/macula, else ~/.local/share/macula. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MACULA_DATA_DIR) return env.MACULA_DATA_DIR;
  const base = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'macula');
}

/**
 * Loads the node key from `dataDir`, creating it (mode 0600) on first start.
 * A key file that exists but cannot be read or parsed is an error: replacing
 * it would silently change the node's identity.
 */
export function loadOrCreateIdentity(dataDir: string): Promise<{ identity: Identity; created: boolean }> {
  return loadOrCreate(dataDir, true);
}

async function loadOrCreate(dataDir: string, retry: boolean): Promise<{ identity: Identity; created: boolean }> {
  const file = join(dataDir, KEY_FILE_NAME);
  let pem: string | undefined;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new IdentityError(`cannot read the node key ${file}: ${(err as Error).message}; fix its permissions or choose another --data-dir`, { cause: err });
    }
  }
  if (pem !== undefined) {
    try {
      return { identity: Identity.fromPem(pem), created: false };
    } catch (err) {
      throw new IdentityError(
        `the node key ${file} is corrupt (${(err as Error).message}); restore it from a backup, or move it away to start with a new identity`,
        { cause: err },
      );
    }
  }
  const identity = Identity.generate();
  try {
    await makeDirectory(dataDir, 0o700);
    // 'wx' fails if another process created the file meanwhile: never overwrite a key.
    await writeFile(file, identity.toPem(), { mode: 0o600, flag: 'wx' });
    await chmod(file, 0o600);
  } catch (err) {
    // Another process created the key meanwhile: read it, once (a key that keeps vanishing is an error, not a loop).
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && retry) return loadOrCreate(dataDir, false);
    throw new IdentityError(`cannot create the node key ${file}: ${(err as Error).message}; check that --data-dir is a writable directory`, { cause: err });
  }
  return { identity, created: true };
}

/**
 * `mkdir -p`, one level at a time. Not `mkdir(…, { recursive: true })`:
 * Node 20's recursive mkdir retries for ever (100 % CPU in a libuv thread)
 * where a parent exists but refuses children with ENOENT, as /proc does;
 * here each level is tried at most twice, so the depth bounds the work.
 */
async function makeDirectory(dir: string, mode: number): Promise<void> {
  try {
    await mkdir(dir, { mode });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if ((await stat(dir)).isDirectory()) return;
      throw err;
    }
    if (code !== 'ENOENT' || dirname(dir) === dir) throw err;
  }
  await makeDirectory(dirname(dir), mode);
  await mkdir(dir, { mode }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}
