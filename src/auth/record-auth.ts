/**
 * What the registry and pub/sub need of a secured realm for their DHT
 * records ("no squatting"): the credential chain a node puts into every
 * record it publishes, and the check that a record's publisher holds a
 * credential permitting what the record claims (serving a procedure,
 * subscribing a pattern). The chain travels in the record value, so any
 * holder can verify it: its subject must be the record's signing key.
 */
import type { Action } from './permissions.js';

export interface RecordAuth {
  /** The chain this node puts into the records it publishes. */
  readonly credential: readonly string[];
  /**
   * Whether the record signed by `publisher` (raw Ed25519 key), carrying
   * `chain`, may claim `action` on every one of `subjects`. Counted when not.
   */
  permits(publisher: Uint8Array, chain: unknown, action: Extract<Action, 'serve' | 'sub'>, subjects: readonly string[]): Promise<boolean>;
}

/** The permission subject of a registry name: a procedure's name for `rpc:<procedure>`, else the service name itself. */
export function serveSubject(serviceName: string): string {
  return serviceName.startsWith('rpc:') ? serviceName.slice(4) : serviceName;
}
