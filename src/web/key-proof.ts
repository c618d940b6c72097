/**
 * Proof of a client key on a web session (browsers present no client
 * certificate, so a web session proves its key inside the session instead).
 *
 * The client opens its request stream with STREAM_ROLE_CLIENT_PROOF instead
 * of STREAM_ROLE_CLIENT; then, before any frame:
 *
 *     node → client   challenge (32 random bytes, fresh per session) ‖ node ID (32)
 *     client → node   Ed25519 public key (32, raw) ‖ signature (64)
 *                     over PROOF_DOMAIN ‖ challenge ‖ node ID ‖ realm (UTF-8)
 *     node → client   one status byte: PROOF_ACCEPTED, or PROOF_REFUSED and the session closes
 *
 * After PROOF_ACCEPTED the stream carries frames as a client stream does,
 * and the session's remote node ID is SHA-256(public key), as a QUIC client
 * certificate proves it: credential admission at HELLO is unchanged.
 *
 * No node: imports here: the browser bundle uses this module.
 */

/** Separates these signatures from every other use of a client key (credentials, DHT records). */
export const PROOF_DOMAIN = 'macula-web-key-proof-v1\0';
export const CHALLENGE_BYTES = 32;
/** What the node sends first: the challenge and its node ID. */
export const CHALLENGE_MESSAGE_BYTES = CHALLENGE_BYTES + 32;
/** What the client answers: raw public key and signature. */
export const PROOF_BYTES = 32 + 64;
export const PROOF_ACCEPTED = 0;
export const PROOF_REFUSED = 1;

/** The bytes a client signs. */
export function proofMessage(challenge: Uint8Array, nodeId: Uint8Array, realm: string): Uint8Array {
  const parts = [new TextEncoder().encode(PROOF_DOMAIN), challenge, nodeId, new TextEncoder().encode(realm)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
