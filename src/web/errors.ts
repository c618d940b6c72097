/** Errors of the web gateway's client library; each has a stable code the user can act on. */
import { MaculaError } from '../util/errors.js';

/** No web gateway answered at the URL (nothing listening, no --web-port, a certificate that does not match the pinned hash). */
export class WebGatewayUnreachableError extends MaculaError {
  readonly url: string;

  constructor(url: string, options?: { cause?: unknown }) {
    super(
      'MACULA_ERR_UNREACHABLE',
      `cannot open a session to the web gateway at ${url}: is \`macula start --web-port\` running there, and does the certificate hash match (see /info.json)?`,
      options,
    );
    this.url = url;
  }
}

/** The node refused the key proof of this web session (key-proof.ts): the signature did not verify. */
export class WebKeyProofError extends MaculaError {
  constructor(url: string, realm: string) {
    super(
      'MACULA_ERR_KEY_PROOF',
      `the web gateway at ${url} refused this client's key proof: the signature does not verify for the session's challenge, the node's ID and realm "${realm}"; check that identity.publicKey belongs to identity.privateKey and that realm is the node's (see /info.json)`,
    );
  }
}
