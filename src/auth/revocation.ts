/**
 * Revocation lists of a secured realm: one JWT signed by the realm
 * authority, `{ aud: realm, iss: authority, seq, rev: [entry, ...] }`, each
 * entry a credential id (`jti`) or a subject public key (hex). A newer list
 * (higher `seq`) replaces an older one as a whole, so the authority prunes
 * entries whose credentials have expired anyway.
 *
 * Nodes hold the newest list they have seen, check every admission and,
 * every few seconds, every connected peer against it, and publish it in
 * the DHT as their own record so that it outlives any one node.
 */
import { decodeJwt, jwtVerify, SignJWT } from 'jose';
import { publicKeyObject, toHex, type Identity } from '../identity/identity.js';
import { UnauthorizedError } from './errors.js';
import { MAX_REVOCATIONS_TOKEN_BYTES } from './messages.js';

export const REVOCATIONS_TYPE = 'macula-revocations+jwt';
/** Most entries in one list: it must fit one DHT record value. */
export const MAX_REVOCATIONS = 100;
const ENTRY = /^([0-9a-f]{32}|[0-9a-f]{64})$/;

export interface RevocationList {
  /** Strictly increasing per authority (unix ms when it was signed). */
  seq: number;
  /** Credential ids and subject public keys (hex). */
  entries: readonly string[];
  /** The signed token, as passed around. */
  token: string;
}

export async function signRevocations(authority: Identity, realm: string, entries: readonly string[], seq: number): Promise<string> {
  if (entries.length > MAX_REVOCATIONS) throw new RangeError(`a revocation list holds at most ${MAX_REVOCATIONS} entries`);
  for (const e of entries) if (!ENTRY.test(e)) throw new RangeError(`"${e}" is neither a credential id nor a public key (hex)`);
  return new SignJWT({ seq, rev: [...entries] })
    .setProtectedHeader({ alg: 'EdDSA', typ: REVOCATIONS_TYPE })
    .setIssuer(toHex(authority.publicKey))
    .setAudience(realm)
    .setIssuedAt()
    .sign(authority.privateKeyObject());
}

/**
 * The list in `token` if the realm authority signed it for this realm.
 * @throws UnauthorizedError otherwise
 */
export async function verifyRevocations(token: unknown, realm: string, authority: Uint8Array): Promise<RevocationList> {
  if (typeof token !== 'string' || token.length > MAX_REVOCATIONS_TOKEN_BYTES) throw new UnauthorizedError('malformed', 'not a revocation list');
  let payload;
  try {
    ({ payload } = await jwtVerify(token, publicKeyObject(authority), {
      algorithms: ['EdDSA'],
      typ: REVOCATIONS_TYPE,
      audience: realm,
      issuer: toHex(authority),
    }));
  } catch (err) {
    const claimsSigned = (() => {
      try {
        return decodeJwt(token).iss === toHex(authority);
      } catch {
        return false;
      }
    })();
    throw new UnauthorizedError(claimsSigned ? 'bad_signature' : 'wrong_authority', `revocation list: ${(err as Error).message}`);
  }
  const { seq, rev } = payload as { seq?: unknown; rev?: unknown };
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || !Array.isArray(rev) || rev.length > MAX_REVOCATIONS || !rev.every((e) => typeof e === 'string' && ENTRY.test(e))) {
    throw new UnauthorizedError('malformed', 'revocation list claims');
  }
  return { seq, entries: rev as string[], token };
}
