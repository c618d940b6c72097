import { MaculaError } from '../util/errors.js';

/** A service name that the registry does not accept. */
export class InvalidServiceNameError extends MaculaError {
  constructor(name: unknown, maxLength: number) {
    const shown = typeof name === 'string' ? JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name) : `a ${typeof name}`;
    super(
      'MACULA_ERR_INVALID_NAME',
      `invalid service name ${shown}: a name is a string of 1..${maxLength} printable characters (no control or invisible formatting characters)`,
    );
  }
}

/** Registration metadata that is not a small CBOR map. */
export class RegistryMetadataError extends MaculaError {
  constructor(name: string, detail: string, options?: { cause?: unknown }) {
    super('MACULA_ERR_BAD_METADATA', `metadata of service "${name}" ${detail}`, options);
  }
}

/** The DHT lookup behind a registry lookup failed (and this node provides nothing under the name). */
export class RegistryLookupError extends MaculaError {
  readonly service: string;

  constructor(service: string, realm: string, options?: { cause?: unknown }) {
    const why = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(
      'MACULA_ERR_REGISTRY_LOOKUP',
      `looking up providers of "${service}" in realm ${realm} failed${why}; check that this node has joined the mesh, then retry`,
      options,
    );
    this.service = service;
  }
}
