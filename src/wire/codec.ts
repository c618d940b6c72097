/**
 * CBOR encoding of message bodies (cbor-x). One shared Encoder/Decoder pair:
 * plain maps in and out, no record extension (peers may be other
 * implementations), byte strings as Uint8Array.
 */
import { Decoder, Encoder } from 'cbor-x';
import { ProtocolError } from '../util/errors.js';
import { validateMessage, type Message } from './messages.js';

const options = { useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false } as const;
const encoder = new Encoder(options);
const decoder = new Decoder(options);

export function encodeBody(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decodes one CBOR item; anything malformed (including trailing bytes or absurd nesting) is bad_cbor. */
export function decodeBody(body: Uint8Array): unknown {
  try {
    return decoder.decode(body);
  } catch (err) {
    const why = err instanceof Error ? err.message : 'unknown error';
    throw new ProtocolError('bad_cbor', `undecodable CBOR body (${why})`, { cause: err });
  }
}

/** Decode + validate: the only way bytes from the network become a Message. */
export function decodeMessage(body: Uint8Array): Message {
  return validateMessage(decodeBody(body));
}
