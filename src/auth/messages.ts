/**
 * Secured-realm wire messages (type range 50..59).
 *
 * REVOKE hands a node a revocation list signed by the realm authority
 * (`macula cred revoke` sends it through the node it connects to). Any
 * admitted peer may send one: only the authority's signature makes it
 * count. Answered with RPC_RESULT `{ r: { seq, adopted } }` or ERROR.
 */
import { defineMessage } from '../wire/messages.js';
import { f } from '../wire/schema.js';

/** Largest revocation list token (MAX_REVOCATIONS entries and the JWS around them). */
export const MAX_REVOCATIONS_TOKEN_BYTES = 16 * 1024;

export const REVOKE = defineMessage(50, 'REVOKE', { rl: f.str(1, MAX_REVOCATIONS_TOKEN_BYTES) });
