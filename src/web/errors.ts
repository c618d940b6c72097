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
