/**
 * Credentials of a secured realm: JWTs (JWS compact, EdDSA over Ed25519,
 * through `jose`) signed by the realm authority, or by an issuer the
 * authority delegated to, binding one subject key to a realm, a role,
 * permissions and a validity window.
 *
 * A credential travels as a chain of at most two tokens, issuer first:
 * `[leaf]` signed by the authority, or `[issuer, leaf]` where `issuer` is an
 * authority-signed credential of role `issuer` whose subject signed `leaf`.
 * The leaf may grant no more than the issuer credential (its allow patterns
 * must be covered; the issuer's deny lists and validity window apply too).
 *
 * Claims: `iss` issuer public key (hex), `sub` subject public key (hex),
 * `aud` realm name, `role`, `perms` (permissions.ts), `nbf`, `exp`, `iat`,
 * `jti` (random id, what a revocation can name). The protected header is
 * `{ alg: "EdDSA", typ: "macula-cred+jwt" }`; nothing else is accepted.
 */
import { randomBytes } from 'node:crypto';
import { decodeJwt, errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import { fromHex, nodeIdFromPublicKey, publicKeyObject, toHex, type Identity } from '../identity/identity.js';
import { MAX_CREDENTIAL_CHAIN, MAX_CREDENTIAL_TOKEN_BYTES } from '../wire/messages.js';
import { UnauthorizedError, type UnauthorizedReason } from './errors.js';
import { Permissions, type PermissionSpec } from './permissions.js';

export type CredentialRole = 'node' | 'client' | 'issuer';
export const CREDENTIAL_ROLES: readonly CredentialRole[] = ['node', 'client', 'issuer'];

export const CREDENTIAL_TYPE = 'macula-cred+jwt';
/** Clock difference tolerated on not-before and expiry. */
export const DEFAULT_CLOCK_TOLERANCE_S = 30;
/** Verified chains kept so a repeated HELLO costs a map lookup, not two signature checks. */
export const DEFAULT_VERIFIED_CACHE_SIZE = 4096;

export interface IssueOptions {
  realm: string;
  role: CredentialRole;
  /** The subject's raw 32-byte Ed25519 public key. */
  subject: Uint8Array;
  permissions: PermissionSpec;
  /** Lifetime from `notBefore`. */
  ttlMs: number;
  /** Unix ms; default now. */
  notBefore?: number;
}

/** What a verified chain says about its subject. */
export interface Credential {
  readonly realm: string;
  readonly role: CredentialRole;
  readonly subjectHex: string;
  /** SHA-256 of the subject key: the node ID its handshake proves. */
  readonly subjectNodeIdHex: string;
  /** The key that signed the leaf (the authority or the delegated issuer). */
  readonly issuerHex: string;
  /** The effective permissions (the issuer's deny lists applied). */
  readonly permissions: Permissions;
  readonly notBefore: number;
  readonly expiresAt: number;
  readonly id: string;
  readonly chain: readonly string[];
}

/** Signs a credential with the authority's (or a delegated issuer's) key. */
export async function issueCredential(signer: Identity, opts: IssueOptions): Promise<string> {
  Permissions.fromSpec(opts.permissions); // refuse what no verifier would accept
  const nbf = Math.floor((opts.notBefore ?? Date.now()) / 1000);
  const exp = nbf + Math.max(1, Math.floor(opts.ttlMs / 1000));
  return new SignJWT({ role: opts.role, perms: opts.permissions })
    .setProtectedHeader({ alg: 'EdDSA', typ: CREDENTIAL_TYPE })
    .setIssuer(toHex(signer.publicKey))
    .setSubject(toHex(opts.subject))
    .setAudience(opts.realm)
    .setIssuedAt()
    .setNotBefore(nbf)
    .setExpirationTime(exp)
    .setJti(randomBytes(16).toString('hex'))
    .sign(signer.privateKeyObject());
}

/** Reads the claims of a token without verifying anything (for display, e.g. `macula cred show`). */
export function inspectCredential(token: string): Omit<Credential, 'chain' | 'permissions' | 'subjectNodeIdHex'> & { permissions: PermissionSpec } {
  const c = decodeClaims(token);
  return {
    realm: c.aud,
    role: c.role,
    subjectHex: c.sub,
    issuerHex: c.iss,
    permissions: c.perms,
    notBefore: c.nbf * 1000,
    expiresAt: c.exp * 1000,
    id: c.jti,
  };
}

interface Claims {
  iss: string;
  sub: string;
  aud: string;
  role: CredentialRole;
  perms: PermissionSpec;
  nbf: number;
  exp: number;
  jti: string;
}

const HEX_KEY = /^[0-9a-f]{64}$/;

function permissionsOf(claims: Claims): Permissions {
  try {
    return Permissions.fromSpec(claims.perms);
  } catch (err) {
    throw new UnauthorizedError('malformed', `bad permissions: ${(err as Error).message}`);
  }
}

function decodeClaims(token: string, payload?: JWTPayload): Claims {
  let p: JWTPayload;
  try {
    if (typeof token !== 'string' || token.length > MAX_CREDENTIAL_TOKEN_BYTES) throw new Error('not a token of acceptable size');
    p = payload ?? decodeJwt(token);
  } catch (err) {
    throw new UnauthorizedError('malformed', (err as Error).message);
  }
  const ok =
    typeof p.iss === 'string' && HEX_KEY.test(p.iss) &&
    typeof p.sub === 'string' && HEX_KEY.test(p.sub) &&
    typeof p.aud === 'string' &&
    CREDENTIAL_ROLES.includes(p.role as CredentialRole) &&
    typeof p.perms === 'object' && p.perms !== null &&
    typeof p.nbf === 'number' && typeof p.exp === 'number' &&
    typeof p.jti === 'string' && p.jti.length <= 64;
  if (!ok) throw new UnauthorizedError('malformed', 'a claim is missing or of the wrong type');
  return p as unknown as Claims;
}

export interface VerifierOptions {
  realm: string;
  /** The realm authority's raw 32-byte Ed25519 public key: the trust anchor. */
  authority: Uint8Array;
  clockToleranceS?: number;
  cacheSize?: number;
  /** Unix ms; tests pass a fixed clock. */
  now?: () => number;
  /** True when the credential (by id) or its subject was revoked. */
  isRevoked?: (credential: Credential) => boolean;
}

/**
 * Verifies credential chains for one realm. A verified chain is cached by
 * its text; a cache hit still re-checks the validity window, the subject
 * and revocation, so caching never extends what a credential grants.
 */
export class CredentialVerifier {
  readonly realm: string;
  readonly authorityHex: string;
  readonly #authorityKey;
  readonly #tolerance: number;
  readonly #now: () => number;
  readonly #isRevoked: ((c: Credential) => boolean) | undefined;
  readonly #cache: LRUCache<string, Credential>;

  constructor(opts: VerifierOptions) {
    this.realm = opts.realm;
    this.authorityHex = toHex(opts.authority);
    this.#authorityKey = publicKeyObject(opts.authority);
    this.#tolerance = opts.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S;
    this.#now = opts.now ?? Date.now;
    this.#isRevoked = opts.isRevoked;
    this.#cache = new LRUCache({ max: opts.cacheSize ?? DEFAULT_VERIFIED_CACHE_SIZE });
  }

  get cacheSize(): number {
    return this.#cache.size;
  }

  /**
   * The credential of the peer whose handshake proved the node ID `subject`
   * (SHA-256 of its key), for `role`.
   * @throws UnauthorizedError naming the reason
   */
  async verify(chain: readonly string[] | undefined, subject: Uint8Array, role: Exclude<CredentialRole, 'issuer'>): Promise<Credential> {
    if (chain === undefined || chain.length === 0) throw new UnauthorizedError('no_credential');
    if (!Array.isArray(chain)) throw new UnauthorizedError('malformed', 'a credential is a list of tokens');
    // The chain's bounds are the HELLO's: the leaf and one issuer, each at most MAX_CREDENTIAL_TOKEN_BYTES.
    if (chain.length > MAX_CREDENTIAL_CHAIN) throw new UnauthorizedError('chain_too_long', `${chain.length} tokens, at most ${MAX_CREDENTIAL_CHAIN}`);
    const cacheKey = chain.join('~');
    let cred = this.#cache.get(cacheKey);
    if (cred === undefined) {
      cred = await this.#verifyChain(chain);
      this.#cache.set(cacheKey, cred);
    }
    this.#checkWindow(cred.notBefore, cred.expiresAt);
    if (cred.subjectNodeIdHex !== toHex(subject)) throw new UnauthorizedError('subject_mismatch');
    if (cred.role !== role) throw new UnauthorizedError('wrong_role', `issued for role ${cred.role}, used as ${role}`);
    if (this.#isRevoked?.(cred)) throw new UnauthorizedError('revoked');
    return cred;
  }

  /** Why a credential admitted earlier is no longer good (expired, revoked), or undefined while it is. */
  recheck(cred: Credential): UnauthorizedReason | undefined {
    try {
      this.#checkWindow(cred.notBefore, cred.expiresAt);
    } catch (err) {
      return (err as UnauthorizedError).reason;
    }
    return this.#isRevoked?.(cred) ? 'revoked' : undefined;
  }

  #checkWindow(notBefore: number, expiresAt: number): void {
    const now = this.#now();
    const tol = this.#tolerance * 1000;
    if (now >= expiresAt + tol) throw new UnauthorizedError('expired', `expired at ${new Date(expiresAt).toISOString()}`);
    if (now < notBefore - tol) throw new UnauthorizedError('not_yet_valid', `valid from ${new Date(notBefore).toISOString()}`);
  }

  async #verifyChain(chain: readonly string[]): Promise<Credential> {
    const leafToken = chain[chain.length - 1]!;
    if (chain.length === 1) {
      const leaf = await this.#verifyToken(leafToken, this.#authorityKey, this.authorityHex);
      if (leaf.role === 'issuer') throw new UnauthorizedError('wrong_role', 'an issuer credential cannot be used to connect');
      return this.#credential(leaf, permissionsOf(leaf), chain, leaf.nbf * 1000, leaf.exp * 1000);
    }
    const issuer = await this.#verifyToken(chain[0]!, this.#authorityKey, this.authorityHex);
    if (issuer.role !== 'issuer') throw new UnauthorizedError('not_an_issuer', 'the first token of the chain is not an issuer credential');
    const leaf = await this.#verifyToken(leafToken, publicKeyObject(fromHex(issuer.sub)), issuer.sub);
    if (leaf.role === 'issuer') throw new UnauthorizedError('chain_too_long', 'an issuer may not delegate further');
    const issuerPerms = permissionsOf(issuer);
    const leafPerms = permissionsOf(leaf);
    if (!issuerPerms.grants(leafPerms)) throw new UnauthorizedError('exceeds_issuer');
    // The chain is valid only while both tokens are.
    const notBefore = Math.max(issuer.nbf, leaf.nbf) * 1000;
    const expiresAt = Math.min(issuer.exp, leaf.exp) * 1000;
    return this.#credential(leaf, leafPerms.within(issuerPerms), chain, notBefore, expiresAt);
  }

  #credential(leaf: Claims, permissions: Permissions, chain: readonly string[], notBefore: number, expiresAt: number): Credential {
    const subjectNodeIdHex = toHex(nodeIdFromPublicKey(fromHex(leaf.sub)));
    return { realm: leaf.aud, role: leaf.role, subjectHex: leaf.sub, subjectNodeIdHex, issuerHex: leaf.iss, permissions, notBefore, expiresAt, id: leaf.jti, chain: [...chain] };
  }

  async #verifyToken(token: string, key: ReturnType<typeof publicKeyObject>, expectedIssuer: string): Promise<Claims> {
    const unverified = decodeClaims(token);
    if (unverified.iss !== expectedIssuer) {
      throw new UnauthorizedError(expectedIssuer === this.authorityHex ? 'wrong_authority' : 'not_an_issuer', `signed by ${unverified.iss.slice(0, 12)}`);
    }
    if (unverified.aud !== this.realm) throw new UnauthorizedError('wrong_realm');
    let payload: JWTPayload;
    try {
      // The window is checked by the caller for the whole chain; here only the signature and the header.
      ({ payload } = await jwtVerify(token, key, { algorithms: ['EdDSA'], typ: CREDENTIAL_TYPE, currentDate: new Date(unverified.nbf * 1000) }));
    } catch (err) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new UnauthorizedError('bad_signature');
      throw new UnauthorizedError('malformed', (err as Error).message);
    }
    return decodeClaims(token, payload);
  }
}
