import { MaculaError } from '../util/errors.js';

/**
 * Why a peer or credential was not admitted; stable, used as the metric label
 * of `macula_auth_refusals_total{reason}`.
 */
export type UnauthorizedReason =
  | 'no_credential'
  | 'malformed'
  | 'bad_signature'
  | 'wrong_authority'
  | 'wrong_realm'
  | 'wrong_role'
  | 'expired'
  | 'not_yet_valid'
  | 'chain_too_long'
  | 'not_an_issuer'
  | 'exceeds_issuer'
  | 'subject_mismatch'
  | 'revoked';

export const UNAUTHORIZED_REASONS: readonly UnauthorizedReason[] = [
  'no_credential',
  'malformed',
  'bad_signature',
  'wrong_authority',
  'wrong_realm',
  'wrong_role',
  'expired',
  'not_yet_valid',
  'chain_too_long',
  'not_an_issuer',
  'exceeds_issuer',
  'subject_mismatch',
  'revoked',
];

/** What to tell the holder of a refused credential, per reason. */
const ADVICE: Record<UnauthorizedReason, string> = {
  no_credential: 'this realm is secured: pass --credential <file> (or MACULA_CREDENTIAL) issued by the realm authority',
  malformed: 'the credential is not a Macula credential; issue a new one with `macula cred issue`',
  bad_signature: 'the credential signature does not verify; it was altered or not issued by the key it names',
  wrong_authority: 'the credential was issued by another authority than the one this realm trusts',
  wrong_realm: 'the credential is for another realm',
  wrong_role: 'the credential was issued for another role (node or client)',
  expired: 'the credential has expired; issue a new one',
  not_yet_valid: 'the credential is not valid yet (check its not-before time and the clocks)',
  chain_too_long: 'the credential chain is longer than the realm accepts',
  not_an_issuer: 'the credential was signed by a key that holds no issuer credential of the authority',
  exceeds_issuer: 'the credential grants more than its issuer may grant',
  subject_mismatch: 'the credential belongs to another key than the one this connection proved',
  revoked: 'the credential or its subject was revoked by the realm authority',
};

/** A peer or credential without a valid credential for the realm. */
export class UnauthorizedError extends MaculaError {
  readonly reason: UnauthorizedReason;

  constructor(reason: UnauthorizedReason, detail?: string) {
    super('MACULA_ERR_UNAUTHORIZED', `not admitted: ${detail ? `${detail}; ` : ''}${ADVICE[reason]}`);
    this.reason = reason;
  }
}

/** An authenticated peer asked for something its credential does not permit. */
export class ForbiddenError extends MaculaError {
  readonly permission: string;

  constructor(action: string, subject: string) {
    const shown = JSON.stringify(subject.length > 80 ? `${subject.slice(0, 80)}…` : subject);
    super('MACULA_ERR_FORBIDDEN', `not permitted: ${action} ${shown} needs the "${action}" permission for it in the credential`);
    this.permission = action;
  }
}
