/**
 * Reads the remote's Ed25519 public key out of the libp2p peer ID that the
 * QUIC binding reports after the TLS handshake. The binding only produces that
 * peer ID from a certificate whose signature it verified, so the key is
 * authenticated: this is the only source of a QUIC peer's identity.
 *
 * A libp2p Ed25519 peer ID is the base58btc text of an identity multihash:
 *   0x00 (identity) 0x24 (36 bytes) | 0x08 0x01 (KeyType = Ed25519) 0x12 0x20 (32-byte Data) | key
 */
import { TransportError } from '../util/errors.js';

const ED25519_PEER_ID_PREFIX = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20);
const ED25519_PEER_ID_BYTES = ED25519_PEER_ID_PREFIX.length + 32;

const BASE58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const BASE58_VALUES = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < BASE58_ALPHABET.length; i++) table[BASE58_ALPHABET.charCodeAt(i)] = i;
  return table;
})();

/** Decodes base58btc (Bitcoin alphabet); throws on any character outside it. */
export function base58btcDecode(text: string): Uint8Array {
  let zeros = 0;
  while (zeros < text.length && text[zeros] === '1') zeros++;
  // Little-endian base-256 digits of the number, grown as needed.
  const digits: number[] = [];
  for (let i = zeros; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? BASE58_VALUES[code]! : -1;
    if (value < 0) throw new TypeError(`invalid base58 character "${text[i]}"`);
    let carry = value;
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j]! * 58;
      digits[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      digits.push(carry & 0xff);
      carry >>= 8;
    }
  }
  const out = new Uint8Array(zeros + digits.length);
  for (let i = 0; i < digits.length; i++) out[out.length - 1 - i] = digits[i]!;
  return out;
}

/** The raw 32-byte Ed25519 public key inside a libp2p peer ID (base58btc text). */
export function publicKeyFromPeerId(peerId: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = base58btcDecode(peerId);
  } catch (err) {
    throw new TransportError(`the peer ID "${peerId}" is not valid base58: ${(err as Error).message}`, { cause: err });
  }
  if (bytes.length !== ED25519_PEER_ID_BYTES || ED25519_PEER_ID_PREFIX.some((b, i) => bytes[i] !== b)) {
    throw new TransportError(`the peer ID "${peerId}" does not embed an Ed25519 public key; only Ed25519 node keys are supported`);
  }
  return bytes.slice(ED25519_PEER_ID_PREFIX.length);
}

export interface RemoteEndpoint {
  host: string;
  port: number;
  /** Raw 32-byte Ed25519 key, from the verified handshake. */
  publicKey: Uint8Array;
}

/** Parses `/ip4/<ip>/udp/<port>/quic-v1/p2p/<peer id>` (or /ip6/...) as reported by the binding. */
export function parseRemoteMultiaddr(multiaddr: string): RemoteEndpoint {
  const parts = multiaddr.split('/');
  // ['', 'ip4', ip, 'udp', port, 'quic-v1', 'p2p', peerId]
  const p2p = parts.indexOf('p2p');
  if ((parts[1] !== 'ip4' && parts[1] !== 'ip6') || parts[3] !== 'udp' || p2p < 0 || !parts[p2p + 1]) {
    throw new TransportError(`unexpected remote address "${multiaddr}" from the QUIC stack: no verified peer ID in it`);
  }
  const port = Number(parts[4]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TransportError(`unexpected remote address "${multiaddr}" from the QUIC stack: bad port`);
  }
  return { host: parts[2]!, port, publicKey: publicKeyFromPeerId(parts[p2p + 1]!) };
}
