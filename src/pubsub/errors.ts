/** Errors a pub/sub caller can act on. Full queues use QueueFullError (util/errors.ts). */
import { MaculaError } from '../util/errors.js';

/** The payload cannot be published: not CBOR-encodable, `undefined`, or too large. */
export class InvalidPayloadError extends MaculaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MACULA_ERR_INVALID_PAYLOAD', message, options);
  }
}
