import { MaculaError, RemoteError } from '../util/errors.js';

/** Why a STORE was refused. Each reason is counted separately. */
export type StoreRefusalReason =
  | 'bad_signature'
  | 'stale'
  | 'expired'
  | 'ttl_too_long'
  | 'too_large'
  | 'key_full'
  | 'publisher_full'
  | 'store_full'
  | 'not_a_node';

export const STORE_REFUSAL_REASONS: readonly StoreRefusalReason[] = [
  'bad_signature',
  'stale',
  'expired',
  'ttl_too_long',
  'too_large',
  'key_full',
  'publisher_full',
  'store_full',
  'not_a_node',
];

const HINTS: Record<StoreRefusalReason, string> = {
  bad_signature: 'the record was not signed by its publisher key or was altered; re-sign it',
  stale: 'a record of the same publisher with a higher sequence number is stored; publish with a higher seq',
  expired: 'the record expiry is in the past; check the publisher clock or re-publish',
  ttl_too_long: 'the record expiry is further ahead than the store allows; use a shorter TTL',
  too_large: 'the record value exceeds the maximum record size; store a smaller value',
  key_full: 'this key holds the maximum number or bytes of records; retry later or use another key',
  publisher_full: 'this publisher holds the maximum number or bytes of records here; withdraw some first',
  store_full: 'the store holds its maximum number or bytes of records; retry later',
  not_a_node: 'only mesh nodes may STORE; light clients publish through their node (subscribe, serve)',
};

/** A record store refused a record; `reason` says which bound or check refused it. */
export class StoreRefusedError extends MaculaError {
  readonly reason: StoreRefusalReason;

  constructor(reason: StoreRefusalReason, detail?: string) {
    super('MACULA_ERR_STORE_REFUSED', `store refused (${reason})${detail ? `: ${detail}` : ''}; ${HINTS[reason]}`);
    this.reason = reason;
  }
}

/** A peer answered a DHT request with ERROR: `code` is the one it sent. */
export class DhtRemoteError extends RemoteError {}

/** What a refusal reason means, for messages that name it. */
export function refusalHint(reason: StoreRefusalReason | 'failed'): string {
  return reason === 'failed' ? 'no answer' : HINTS[reason];
}

/**
 * A record was not accepted by enough of the k closest nodes of its key
 * (see `Dht.put`): subscribing, serving or advertising did not take effect
 * in the mesh. `refusals` counts the answers by reason.
 */
export class NotStoredError extends MaculaError {
  readonly accepted: number;
  readonly refusals: Partial<Record<StoreRefusalReason | 'failed', number>>;

  constructor(what: string, accepted: number, refusals: Partial<Record<StoreRefusalReason | 'failed', number>>) {
    const reasons = Object.entries(refusals)
      .map(([r, n]) => `${r} ×${n}`)
      .join(', ');
    const first = Object.keys(refusals)[0] as StoreRefusalReason | 'failed' | undefined;
    super(
      'MACULA_ERR_NOT_STORED',
      `${what} was not stored in the mesh (MACULA_ERR_NOT_STORED): accepted by ${accepted} node(s), refused: ${reasons || 'none'}` +
        (first ? ` (${refusalHint(first)})` : '') +
        '; retry later, or use fewer or smaller records',
    );
    this.accepted = accepted;
    this.refusals = refusals;
  }

  /** The same refusal, naming what was being stored. */
  about(what: string): NotStoredError {
    return new NotStoredError(what, this.accepted, this.refusals);
  }
}
