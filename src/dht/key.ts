import { createHash } from 'node:crypto';

/**
 * The DHT key of `name` in `namespace`: SHA-256('macula:' + namespace + ':' + name).
 *
 * The namespace names the feature and the realm (e.g. `registry/acme`); it
 * may not contain ':' so that no (namespace, name) pair can produce the
 * input of another. Names are free-form.
 */
export function dhtKey(namespace: string, name: string): Uint8Array {
  if (namespace.length === 0 || namespace.includes(':')) {
    throw new TypeError(`invalid DHT namespace "${namespace}": it must be non-empty and may not contain ':' (join parts with '/')`);
  }
  return new Uint8Array(createHash('sha256').update(`macula:${namespace}:${name}`, 'utf8').digest());
}
