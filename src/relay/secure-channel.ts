/**
 * The ends of a relayed connection talk through a Noise XX channel bound to
 * their node keys (noise-handshake with noise-curve-ed: the static keys are
 * the nodes' Ed25519 keys, as in HyperDHT), so the relay forwards only
 * ciphertext: it can neither read, nor alter (ChaCha20-Poly1305 with
 * counter nonces: a changed, dropped, replayed or reordered message fails
 * to decrypt and ends the channel), nor impersonate either end (the node ID
 * is SHA-256 of the static key the handshake proved). The prologue names
 * the protocol and the realm, so both ends must agree on both.
 */
import { createRequire } from 'node:module';
import { nodeIdFromPublicKey, toHex, type Identity } from '../identity/identity.js';
import { PeerIdMismatchError, ProtocolError } from '../util/errors.js';
import { MAX_RELAY_DATA_BYTES } from './messages.js';

interface NoiseKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}
interface NoiseState {
  initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void;
  send(payload?: Uint8Array): Uint8Array;
  recv(message: Uint8Array): Uint8Array;
  readonly complete: boolean;
  readonly rs: Uint8Array | null;
  readonly tx: Uint8Array;
  readonly rx: Uint8Array;
}
interface CipherState {
  encrypt(plaintext: Uint8Array): Uint8Array;
  decrypt(ciphertext: Uint8Array): Uint8Array;
}

const require = createRequire(import.meta.url);
const Noise = require('noise-handshake') as new (pattern: string, initiator: boolean, staticKeyPair: NoiseKeyPair, options: { curve: unknown }) => NoiseState;
const Cipher = require('noise-handshake/cipher') as new (key: Uint8Array) => CipherState;
const curve = require('noise-curve-ed') as unknown;

/** Authentication tag of every transport message. */
export const NOISE_TAG_BYTES = 16;
/** Largest plaintext of one channel message. */
export const MAX_CHANNEL_PLAINTEXT = MAX_RELAY_DATA_BYTES - NOISE_TAG_BYTES;

/** Where the channel's messages travel: one message in, one message out, in order (a relay circuit). */
export interface MessagePipe {
  send(bytes: Uint8Array): Promise<void>;
  /** The next message, or null when the pipe ended. */
  read(): Promise<Uint8Array | null>;
  close(): void;
}

export class SecureChannel {
  /** The peer's node ID, from the static key its handshake proved. */
  readonly remoteNodeId: Uint8Array;
  readonly remoteNodeIdHex: string;
  readonly #pipe: MessagePipe;
  readonly #tx: CipherState;
  readonly #rx: CipherState;

  private constructor(pipe: MessagePipe, noise: NoiseState) {
    this.#pipe = pipe;
    this.remoteNodeId = nodeIdFromPublicKey(noise.rs!);
    this.remoteNodeIdHex = toHex(this.remoteNodeId);
    this.#tx = new Cipher(noise.tx);
    this.#rx = new Cipher(noise.rx);
  }

  /**
   * Runs the handshake. The initiator names the node it expects
   * (`expectedNodeId`); a different key fails with PeerIdMismatchError.
   */
  static async handshake(pipe: MessagePipe, identity: Identity, options: { initiator: boolean; realm: string; expectedNodeId?: string; where?: string }): Promise<SecureChannel> {
    const noise = new Noise('XX', options.initiator, noiseKeyPair(identity), { curve });
    noise.initialise(new TextEncoder().encode(`macula-relay-v1\0${options.realm}`));
    const next = async () => {
      const m = await pipe.read();
      if (m === null) throw new ProtocolError('truncated_frame', 'the relayed peer left during the handshake');
      return m;
    };
    try {
      if (options.initiator) {
        await pipe.send(noise.send());
        noise.recv(await next());
        await pipe.send(noise.send());
      } else {
        noise.recv(await next());
        await pipe.send(noise.send());
        noise.recv(await next());
      }
    } catch (err) {
      pipe.close();
      if (err instanceof ProtocolError) throw err;
      throw new ProtocolError('invalid_message', `the relayed handshake failed: ${(err as Error).message}`, { cause: err });
    }
    if (!noise.complete || !noise.rs) {
      pipe.close();
      throw new ProtocolError('invalid_message', 'the relayed handshake did not complete');
    }
    const channel = new SecureChannel(pipe, noise);
    if (options.expectedNodeId !== undefined && channel.remoteNodeIdHex !== options.expectedNodeId) {
      pipe.close();
      throw new PeerIdMismatchError(options.where ?? 'relayed address', options.expectedNodeId, channel.remoteNodeIdHex);
    }
    return channel;
  }

  /** Encrypts and sends one message (≤ MAX_CHANNEL_PLAINTEXT bytes); messages go out in call order. */
  send(plaintext: Uint8Array): Promise<void> {
    return this.#pipe.send(this.#tx.encrypt(plaintext));
  }

  /** The next decrypted message, or null when the pipe ended. A message that fails to authenticate throws. */
  async read(): Promise<Uint8Array | null> {
    const m = await this.#pipe.read();
    if (m === null) return null;
    try {
      return this.#rx.decrypt(m);
    } catch (err) {
      throw new ProtocolError('invalid_message', 'a relayed message failed authentication (altered, replayed or reordered)', { cause: err });
    }
  }

  close(): void {
    this.#pipe.close();
  }
}

/** The node's Ed25519 key in libsodium's layout (seed ‖ public key), which noise-curve-ed takes. */
function noiseKeyPair(identity: Identity): NoiseKeyPair {
  return { publicKey: Buffer.from(identity.publicKey), secretKey: Buffer.from(identity.ed25519SecretKey()) };
}
