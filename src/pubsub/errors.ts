/** Errors a pub/sub caller can act on. Full queues use QueueFullError (util/errors.ts). */
import { MaculaError } from '../util/errors.js';

/** The payload cannot be published: not CBOR-encodable, `undefined`, or too large. */
export class InvalidPayloadError extends MaculaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MACULA_ERR_INVALID_PAYLOAD', message, options);
  }
}

/** A request found no subscriber to answer it (as NATS's "no responders"). */
export class NoRespondersError extends MaculaError {
  constructor(topic: string) {
    super('MACULA_ERR_NO_RESPONDERS', `no subscriber in the mesh matches ${JSON.stringify(topic)}, so nobody can answer the request; start a responder (subscribe and answer with msg.respond) or check the topic`);
  }
}
