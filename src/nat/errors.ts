import { MaculaError } from '../util/errors.js';

/** A light client asked for a dial-back: clients do not listen, only mesh nodes are checked. */
export class DialBackNotANodeError extends MaculaError {
  constructor() {
    super('MACULA_ERR_UNSUPPORTED', 'only mesh nodes can ask for a dial-back; light clients do not listen and are not dialed');
  }
}
