/** Errors the gateway answers a client with; each has a stable code the client (and its user) can act on. */
import { MaculaError, NotAClientError } from '../util/errors.js';
import { messageName } from '../wire/messages.js';

/** The node already serves its maximum number of light clients. */
export class TooManyClientsError extends MaculaError {
  readonly limit: number;

  constructor(limit: number) {
    super('MACULA_ERR_TOO_MANY_CLIENTS', `this node serves its maximum of ${limit} clients; try another node or raise --max-clients`);
    this.limit = limit;
  }
}

/** The node already serves its maximum number of light clients from the client's source address. */
export class TooManyClientsFromAddressError extends MaculaError {
  readonly limit: number;

  constructor(limit: number, source: string) {
    super(
      'MACULA_ERR_TOO_MANY_CLIENTS_FROM_ADDRESS',
      `this node serves its maximum of ${limit} clients from one address (${source}); close some of them, or use another node (the node's limit is --max-clients-per-address)`,
    );
    this.limit = limit;
  }
}

/** A gateway request came from a mesh node, not from a light client. */
export function meshNodeRequest(type: number): NotAClientError {
  return new NotAClientError(`${messageName(type)} is a light-client request; this peer said HELLO as a mesh node, which talks to the mesh directly`);
}

/** The node has no pub/sub service, so it cannot publish or subscribe for its clients. */
export class PubSubUnavailableError extends MaculaError {
  constructor() {
    super('MACULA_ERR_UNSUPPORTED', 'this node does not offer pub/sub; connect to a node that does');
  }
}

/** A per-client limit (subscriptions, calls in flight, served procedures) is reached. */
export class ClientLimitError extends MaculaError {
  readonly limit: number;

  constructor(code: string, what: string, limit: number, hint: string) {
    super(code, `${what}: this client's limit of ${limit} is reached; ${hint}`);
    this.limit = limit;
  }
}
