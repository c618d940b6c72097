/**
 * The client side of a web session's key proof (../key-proof.ts): the
 * client key as WebCrypto keys, from CryptoKeys, raw bytes or a creds file,
 * and the signature over the node's challenge, made with `crypto.subtle`
 * (Ed25519: Node 20's WebCrypto, current browsers). No node: imports here.
 */
import { ConfigError } from '../../util/errors.js';
import { proofMessage } from '../key-proof.js';

/** A client key: CryptoKeys (Ed25519), or bytes: the private key as a 32-byte seed, PKCS#8 DER, or seed ‖ public key (64 bytes); the public key raw (32 bytes). */
export interface WebClientIdentity {
  privateKey: CryptoKey | Uint8Array;
  /** Optional when the private key is bytes or an extractable CryptoKey: derived from it. */
  publicKey?: CryptoKey | Uint8Array;
}

/** The key ready to sign: its private CryptoKey and raw public key. */
export interface SigningKey {
  privateKey: CryptoKey;
  publicKey: Uint8Array;
}

/** WebCrypto's key type, named without DOM types or a node: import. */
export type CryptoKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

const ED25519 = { name: 'Ed25519' } as const;
// PKCS#8 DER of an Ed25519 private key: this prefix, then the 32-byte seed (RFC 8410).
const PKCS8_ED25519_PREFIX = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20);
const CRED_BLOCK_RE = /-----BEGIN MACULA CREDENTIAL-----\s*([A-Za-z0-9_\-.]+)\s*-----END MACULA CREDENTIAL-----/g;
const KEY_RE = /-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/;

/**
 * A creds file's text (as `macula cred issue --role client` writes it: one
 * MACULA CREDENTIAL block per token, then the client's private key), or one
 * token: the chain for HELLO, and the key when the text has one.
 */
export function parseCreds(text: string): { credential: string[]; privateKey: Uint8Array | undefined } {
  const credential = [...text.matchAll(CRED_BLOCK_RE)].map((m) => m[1]!);
  if (credential.length === 0) {
    const token = text.trim();
    if (!/^[A-Za-z0-9_\-.]+$/.test(token)) throw new ConfigError('the credential is neither a token nor a creds file with MACULA CREDENTIAL blocks');
    return { credential: [token], privateKey: undefined };
  }
  const key = KEY_RE.exec(text);
  return { credential, privateKey: key ? base64Bytes(key[1]!.replace(/\s+/g, '')) : undefined };
}

/** The identity as keys WebCrypto signs with. */
export async function signingKey(identity: WebClientIdentity): Promise<SigningKey> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new ConfigError('no WebCrypto here (crypto.subtle): a key proof needs a secure context (https) or Node 20');
  let privateKey: CryptoKey;
  let publicKey: Uint8Array | undefined;
  if (identity.privateKey instanceof Uint8Array) {
    const bytes = identity.privateKey;
    let pkcs8: Uint8Array;
    if (bytes.length === 32 || bytes.length === 64) {
      pkcs8 = new Uint8Array(PKCS8_ED25519_PREFIX.length + 32);
      pkcs8.set(PKCS8_ED25519_PREFIX);
      pkcs8.set(bytes.subarray(0, 32), PKCS8_ED25519_PREFIX.length);
      if (bytes.length === 64) publicKey = bytes.slice(32);
    } else {
      pkcs8 = bytes;
    }
    try {
      privateKey = await subtle.importKey('pkcs8', pkcs8, ED25519, true, ['sign']);
    } catch (err) {
      throw new ConfigError('identity.privateKey is not an Ed25519 private key (a 32-byte seed, PKCS#8 DER, or seed ‖ public key)', { cause: err });
    }
  } else {
    privateKey = identity.privateKey;
  }
  if (identity.publicKey instanceof Uint8Array) publicKey = identity.publicKey;
  else if (identity.publicKey) publicKey = new Uint8Array(await subtle.exportKey('raw', identity.publicKey));
  if (!publicKey) {
    if (!privateKey.extractable) throw new ConfigError('give identity.publicKey: the private CryptoKey is not extractable, so its public key cannot be derived');
    const jwk = await subtle.exportKey('jwk', privateKey);
    publicKey = base64Bytes(jwk.x!.replace(/-/g, '+').replace(/_/g, '/'));
  }
  if (publicKey.length !== 32) throw new ConfigError(`identity.publicKey is a raw Ed25519 public key of 32 bytes, got ${publicKey.length}`);
  return { privateKey, publicKey };
}

/** The answer to the node's challenge: public key ‖ signature over the proof message. */
export async function proveKey(key: SigningKey, challenge: Uint8Array, nodeId: Uint8Array, realm: string): Promise<Uint8Array> {
  const signature = new Uint8Array(await crypto.subtle.sign(ED25519, key.privateKey, proofMessage(challenge, nodeId, realm)));
  const out = new Uint8Array(key.publicKey.length + signature.length);
  out.set(key.publicKey);
  out.set(signature, key.publicKey.length);
  return out;
}

function base64Bytes(b64: string): Uint8Array {
  const bin = atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, '='));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
