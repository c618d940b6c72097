/**
 * The value of a registry record: CBOR `{ n: name, a: { h: host, p: port }, m: metadata, c?: credential }`
 * (`c`, the publisher's credential chain, in a secured realm).
 *
 * The provider's node ID is not in it: it is the SHA-256 of the record's
 * publisher key, which the DHT has checked the signature of. A value is
 * untrusted input from any node of the mesh, so decodeRegistration()
 * validates every field and returns undefined for anything else.
 */
import type { PeerAddress } from '../transport/types.js';
import { decodeBody, encodeBody, encodedSize } from '../wire/codec.js';
import { MAX_CREDENTIAL_CHAIN, MAX_CREDENTIAL_TOKEN_BYTES } from '../wire/messages.js';
import { isPlainMap } from '../wire/schema.js';
import { RegistryMetadataError } from './errors.js';

export const DEFAULT_MAX_METADATA_BYTES = 4096;

/** The DHT namespace of a realm's registrations: a registration of `name` lives under dhtKey(namespace, name). */
export function registryNamespace(realm: string): string {
  return `registry/${realm}`;
}
/** Room for the name (≤ 128 UTF-16 units, ≤ 512 bytes), the host (≤ 253) and the CBOR framing. */
const VALUE_OVERHEAD_BYTES = 1024;
/** Room for a credential chain, in a secured realm. */
const CREDENTIAL_BYTES = MAX_CREDENTIAL_CHAIN * MAX_CREDENTIAL_TOKEN_BYTES;
const MAX_HOST_LENGTH = 253;

export interface Registration {
  name: string;
  address: PeerAddress;
  metadata: Readonly<Record<string, unknown>>;
  /** The publisher's credential chain as found in the value (unverified). */
  credential: unknown;
}

const EMPTY_METADATA: Readonly<Record<string, unknown>> = Object.freeze({});

/** Checks the metadata (a plain map, CBOR-encodable, at most `maxBytes` encoded) and encodes the registration. */
export function encodeRegistration(name: string, address: PeerAddress, metadata: unknown, maxBytes: number, credential?: readonly string[]): Uint8Array {
  if (!isPlainMap(metadata)) throw new RegistryMetadataError(name, 'must be a plain object (a CBOR map)');
  let size: number;
  try {
    size = encodedSize(metadata);
  } catch (err) {
    throw new RegistryMetadataError(name, 'cannot be encoded as CBOR (functions, symbols and cycles are not allowed)', { cause: err });
  }
  if (size > maxBytes) throw new RegistryMetadataError(name, `is ${size} bytes encoded, at most ${maxBytes} allowed; keep metadata small`);
  const value: Record<string, unknown> = { n: name, a: { h: address.host, p: address.port }, m: metadata };
  if (credential) value.c = credential;
  return encodeBody(value);
}

/** Largest record value a registration with `maxMetadataBytes` of metadata can have. */
export function maxRegistrationBytes(maxMetadataBytes: number, withCredential = false): number {
  return maxMetadataBytes + VALUE_OVERHEAD_BYTES + (withCredential ? CREDENTIAL_BYTES : 0);
}

/** The registration in `value` if it is a valid one for `name`, else undefined. */
export function decodeRegistration(value: Uint8Array, name: string, maxValueBytes: number): Registration | undefined {
  // Checked before decoding so an oversized value costs nothing.
  if (value.length === 0 || value.length > maxValueBytes) return undefined;
  let v: unknown;
  try {
    v = decodeBody(value);
  } catch {
    return undefined;
  }
  if (!isPlainMap(v)) return undefined;
  // A record whose name differs was stored under a key it does not belong to.
  if (v.n !== name) return undefined;
  const a = v.a;
  if (!isPlainMap(a)) return undefined;
  const { h, p } = a;
  if (typeof h !== 'string' || h.length === 0 || h.length > MAX_HOST_LENGTH) return undefined;
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) return undefined;
  const m = v.m;
  if (m !== undefined && m !== null && !isPlainMap(m)) return undefined;
  return {
    name,
    address: Object.freeze({ host: h, port: p }),
    metadata: m ? Object.freeze(m) : EMPTY_METADATA,
    credential: v.c,
  };
}
