/**
 * The security of one secured realm as one node (or light client) sees it:
 * its own credential, the verifier of everybody else's, and the counters of
 * every refusal.
 *
 * - `admit()` is called where a HELLO arrives: the chain the peer sent is
 *   verified against the realm authority, for the role it says, and bound to
 *   the node ID its TLS handshake proved (never to a field it sent).
 * - `check()` is called where a request arrives, with the credential of the
 *   peer that sent it: a node's credential bounds what the node and its light
 *   clients together may do, so a client's request is checked against the
 *   client's credential and the node's own.
 */
import { nodeIdFromPublicKey, type Identity } from '../identity/identity.js';
import type { RecordAuth } from './record-auth.js';
import { verifyRevocations, type RevocationList } from './revocation.js';
import { CredentialVerifier, type Credential } from './credential.js';
import { ForbiddenError, UnauthorizedError, UNAUTHORIZED_REASONS, type UnauthorizedReason } from './errors.js';
import type { Action } from './permissions.js';

export interface RealmGuardInit {
  realm: string;
  /** The realm authority's raw Ed25519 public key. */
  authority: Uint8Array;
  /** This node's (or client's) own credential chain, issuer first. */
  credential: readonly string[];
  identity: Identity;
  role: 'node' | 'client';
  clockToleranceS?: number;
  verifiedCacheSize?: number;
  now?: () => number;
}

export interface RealmGuardStats {
  /** Peers refused at HELLO, by reason. */
  refusals: Record<UnauthorizedReason, number>;
  /** Requests refused for lack of a permission, by action. */
  forbidden: Record<Action | 'admin', number>;
  /** Peers admitted since start. */
  admitted: number;
  /** DHT records refused or skipped because their publisher's credential does not permit what they claim. */
  recordsRefused: number;
  /** Verified credential chains cached. */
  verifiedCached: number;
  /** When this node's own credential expires (unix ms). */
  ownExpiresAt: number;
  revokedEntries: number;
}

export class RealmGuard implements RecordAuth {
  readonly realm: string;
  readonly role: 'node' | 'client';
  readonly verifier: CredentialVerifier;
  readonly #identity: Identity;
  #chain: readonly string[];
  #own: Credential | undefined;
  readonly #refusals = Object.fromEntries(UNAUTHORIZED_REASONS.map((r) => [r, 0])) as Record<UnauthorizedReason, number>;
  readonly #forbidden: Record<Action | 'admin', number> = { pub: 0, sub: 0, serve: 0, call: 0, admin: 0 };
  #admitted = 0;
  #recordsRefused = 0;
  /** The newest revocation list seen, and its entries (credential ids and subject keys, hex). */
  #revocations: RevocationList | undefined;
  #revoked: ReadonlySet<string> = new Set();
  readonly #authority: Uint8Array;

  constructor(init: RealmGuardInit) {
    this.realm = init.realm;
    this.role = init.role;
    this.#identity = init.identity;
    this.#chain = init.credential;
    this.#authority = init.authority;
    this.verifier = new CredentialVerifier({
      realm: init.realm,
      authority: init.authority,
      clockToleranceS: init.clockToleranceS,
      cacheSize: init.verifiedCacheSize,
      now: init.now,
      isRevoked: (c) => this.isRevoked(c),
    });
  }

  /**
   * Checks this side's own credential: a node that every peer would refuse
   * fails at start with the reason, not later with silence.
   * @throws UnauthorizedError about the node's own credential
   */
  async verifyOwn(): Promise<Credential> {
    this.#own = await this.#verifyOwn(this.#chain);
    return this.#own;
  }

  async #verifyOwn(chain: readonly string[]): Promise<Credential> {
    try {
      return await this.verifier.verify(chain, this.#identity.nodeId, this.role);
    } catch (err) {
      if (err instanceof UnauthorizedError) {
        throw new UnauthorizedError(err.reason, `this ${this.role}'s own credential is not valid for realm "${this.realm}" and its key`);
      }
      throw err;
    }
  }

  /** The chain this side sends in its HELLO. */
  get credential(): readonly string[] {
    return this.#chain;
  }

  /** This side's own verified credential (after verifyOwn()). */
  get own(): Credential {
    if (this.#own === undefined) throw new Error('the own credential was not verified yet: call verifyOwn() first');
    return this.#own;
  }

  /** Replaces this side's own credential (e.g. on SIGHUP); the old one stays when the new one does not verify. */
  async reload(chain: readonly string[]): Promise<Credential> {
    this.#own = await this.#verifyOwn(chain);
    this.#chain = chain;
    return this.#own;
  }

  async permits(publisher: Uint8Array, chain: unknown, action: 'serve' | 'sub', subjects: readonly string[]): Promise<boolean> {
    try {
      if (!Array.isArray(chain) || !chain.every((t) => typeof t === 'string')) throw new UnauthorizedError('no_credential');
      const cred = await this.verifier.verify(chain, nodeIdFromPublicKey(publisher), 'node');
      if (subjects.every((s) => cred.permissions.allows(action, s))) return true;
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
    }
    this.#recordsRefused++;
    return false;
  }

  /** Counts a peer dropped later for `reason` (its credential expired or was revoked while connected). */
  countRefusal(reason: UnauthorizedReason): void {
    this.#refusals[reason]++;
  }

  /**
   * Admits the peer whose handshake proved `nodeId`, or throws
   * UnauthorizedError (counted by reason).
   */
  async admit(nodeId: Uint8Array, role: 'node' | 'client', chain: readonly string[] | undefined): Promise<Credential> {
    try {
      const cred = await this.verifier.verify(chain, nodeId, role);
      this.#admitted++;
      return cred;
    } catch (err) {
      if (err instanceof UnauthorizedError) this.#refusals[err.reason]++;
      throw err;
    }
  }

  /** Why a credential admitted earlier is no longer good (expired, revoked), or undefined while it is. */
  recheck(cred: Credential): UnauthorizedReason | undefined {
    return this.verifier.recheck(cred);
  }

  /**
   * Throws ForbiddenError (counted) unless `cred` permits `action` on
   * `subject`; a client's request must also be within this node's own
   * credential, which bounds what the node and its clients may do together.
   */
  check(cred: Credential | undefined, action: Action, subject: string, viaClient = false): void {
    if (cred === undefined || !cred.permissions.allows(action, subject) || (viaClient && !this.own.permissions.allows(action, subject))) {
      this.#forbidden[action]++;
      throw new ForbiddenError(action, subject);
    }
  }

  /** Whether `cred` may see other peers' addresses and IDs; counted when not. */
  mayAdminister(cred: Credential | undefined): boolean {
    const ok = cred?.permissions.admin === true && this.own.permissions.admin;
    if (!ok) this.#forbidden.admin++;
    return ok;
  }

  isRevoked(cred: Credential): boolean {
    return this.#revoked.size > 0 && (this.#revoked.has(cred.id) || this.#revoked.has(cred.subjectHex));
  }

  /** The newest revocation list in force, if any. */
  get revocations(): RevocationList | undefined {
    return this.#revocations;
  }

  /**
   * Adopts the revocation list in `token` when the realm authority signed it
   * and it is newer than the one in force; returns whether it was adopted.
   * @throws UnauthorizedError when the authority did not sign it
   */
  async adoptRevocations(token: unknown): Promise<boolean> {
    const list = await verifyRevocations(token, this.realm, this.#authority);
    if (this.#revocations !== undefined && list.seq <= this.#revocations.seq) return false;
    this.#revocations = list;
    this.#revoked = new Set(list.entries);
    return true;
  }

  stats(): RealmGuardStats {
    return {
      refusals: { ...this.#refusals },
      forbidden: { ...this.#forbidden },
      admitted: this.#admitted,
      recordsRefused: this.#recordsRefused,
      verifiedCached: this.verifier.cacheSize,
      ownExpiresAt: this.#own?.expiresAt ?? 0,
      revokedEntries: this.#revoked.size,
    };
  }
}
