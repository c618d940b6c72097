import { MaculaError } from '../util/errors.js';

/** Why a STORE was refused. Each reason is counted separately. */
export type StoreRefusalReason =
  | 'bad_signature'
  | 'stale'
  | 'expired'
  | 'ttl_too_long'
  | 'too_large'
  | 'key_full'
  | 'publisher_full'
  | 'store_full';

export const STORE_REFUSAL_REASONS: readonly StoreRefusalReason[] = [
  'bad_signature',
  'stale',
  'expired',
  'ttl_too_long',
  'too_large',
  'key_full',
  'publisher_full',
  'store_full',
];

const HINTS: Record<StoreRefusalReason, string> = {
  bad_signature: 'the record was not signed by its publisher key or was altered; re-sign it',
  stale: 'a record of the same publisher with a higher sequence number is stored; publish with a higher seq',
  expired: 'the record expiry is in the past; check the publisher clock or re-publish',
  ttl_too_long: 'the record expiry is further ahead than the store allows; use a shorter TTL',
  too_large: 'the record value exceeds the maximum record size; store a smaller value',
  key_full: 'this key holds the maximum number of records; retry later or use another key',
  publisher_full: 'this publisher holds the maximum number of records here; withdraw some first',
  store_full: 'the store holds its maximum number of records; retry later',
};

/** A record store refused a record; `reason` says which bound or check refused it. */
export class StoreRefusedError extends MaculaError {
  readonly reason: StoreRefusalReason;

  constructor(reason: StoreRefusalReason, detail?: string) {
    super('MACULA_ERR_STORE_REFUSED', `store refused (${reason})${detail ? `: ${detail}` : ''}; ${HINTS[reason]}`);
    this.reason = reason;
  }
}

/** A peer answered a DHT request with ERROR or with a response of the wrong type. */
export class DhtRemoteError extends MaculaError {
  readonly remoteCode: string;

  constructor(remoteCode: string, message: string) {
    super('MACULA_ERR_DHT_REMOTE', message);
    this.remoteCode = remoteCode;
  }
}
