import { MaculaError } from '../util/errors.js';

/** A light client asked for a dial-back: clients do not listen, only mesh nodes are checked. */
export class DialBackNotANodeError extends MaculaError {
  constructor() {
    super('MACULA_ERR_UNSUPPORTED', 'only mesh nodes can ask for a dial-back; light clients do not listen and are not dialed');
  }
}

/** A dial-back asked over a relayed connection: the asker's own address is unknown there, so it is not checked. */
export class DialBackRelayedError extends MaculaError {
  constructor() {
    super('MACULA_ERR_UNSUPPORTED', 'a dial-back is not run for a node reached through a relay; ask a node you reach directly');
  }
}
