/**
 * RPC wire messages (types 20..29).
 *
 * RPC_CALL   { p: procedure, a?: args (any CBOR), d?: ms the caller waits, h?: headers }
 * RPC_RESULT { r?: result (any CBOR), h?: headers }          (response)
 *
 * Failures travel as the core ERROR response (code + message). `d` lets the
 * server stop a handler (abort its signal) once the caller has given up;
 * it is optional so that other implementations may leave it out.
 */
import { defineMessage } from '../wire/messages.js';
import { HEADERS_FIELD } from '../wire/headers.js';
import { f } from '../wire/schema.js';

/** Wire limit for a procedure name. Registered names are shorter (see MAX_PROCEDURE_LENGTH). */
export const MAX_WIRE_PROCEDURE_LENGTH = 128;
/** Longest `d` accepted: one day; longer waits are not a call but a job. */
export const MAX_CALL_BUDGET_MS = 86_400_000;

export const RPC_CALL = defineMessage(20, 'RPC_CALL', {
  p: f.str(1, MAX_WIRE_PROCEDURE_LENGTH),
  /** Headers of the call (ctx.headers of the handler). */
  h: HEADERS_FIELD,
  // Optional: `undefined` args (a call without arguments) are a valid call.
  a: f.opt(f.any()),
  d: f.opt(f.uint(MAX_CALL_BUDGET_MS)),
  /** The light client the calling node calls for (its node ID). */
  o: f.opt(f.bytes(32, 32)),
});

/** `h`: the headers the handler set (ctx.resultHeaders). */
export const RPC_RESULT = defineMessage(21, 'RPC_RESULT', { r: f.opt(f.any()), h: HEADERS_FIELD }, { response: true });
