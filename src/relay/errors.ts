import { MaculaError } from '../util/errors.js';

/** Codes a relay refuses with, in RELAY_STATUS and ERROR answers. */
export type RelayRefusal = 'MACULA_ERR_RELAY_OFF' | 'MACULA_ERR_RELAY_LIMIT' | 'MACULA_ERR_RELAY_NO_RESERVATION';

/** A relay refused a reservation or a circuit, or the circuit could not be opened through any relay. */
export class RelayError extends MaculaError {
  constructor(code: RelayRefusal | 'MACULA_ERR_RELAY_FAILED', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export function relayOff(): RelayError {
  return new RelayError('MACULA_ERR_RELAY_OFF', 'this node does not relay (it is not public, or it runs with --no-relay); ask another node');
}
