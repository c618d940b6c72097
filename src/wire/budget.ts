/**
 * Byte budgets for partially received frames.
 *
 * A frame that does not arrive in one chunk is buffered until it is complete.
 * Its announced length (header + body) is reserved when the reader is about
 * to read more of it, against three bounds: the stream (maxFrameSize, checked
 * by the decoder), its connection (much smaller until the peer's HELLO was
 * accepted) and the whole node. A frame that does not fit is refused before
 * its body is read: the stream is reset, and for a connection bound the
 * connection is closed. A frame begun must also complete within
 * frameTimeoutMs. Every refusal is counted by reason.
 *
 * Reservation happens only when more bytes must be read, so a HELLO and a
 * request pipelined behind it in one chunk are judged after the HELLO was
 * accepted, under the connection's full budget.
 */
import { MaculaError } from '../util/errors.js';
import { intOption } from '../util/options.js';

export interface FrameBudgetOptions {
  /** Bytes of unfinished frames buffered by the whole node. Default 64 MiB. */
  maxNodeFrameBytes?: number;
  /** Bytes of unfinished frames buffered for one connection whose peer's HELLO was accepted. Default 4 MiB. */
  maxConnectionFrameBytes?: number;
  /** The same for a connection whose peer has not had a HELLO accepted yet. Default 64 KiB. */
  maxPreHelloFrameBytes?: number;
  /** A frame begun must be complete within this time. Default 30 s. */
  frameTimeoutMs?: number;
}

export const DEFAULT_MAX_NODE_FRAME_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_CONNECTION_FRAME_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_PRE_HELLO_FRAME_BYTES = 64 * 1024;
export const DEFAULT_FRAME_TIMEOUT_MS = 30_000;

export const FRAME_BUDGET_DEFAULTS = Object.freeze({
  maxNodeFrameBytes: DEFAULT_MAX_NODE_FRAME_BYTES,
  maxConnectionFrameBytes: DEFAULT_MAX_CONNECTION_FRAME_BYTES,
  maxPreHelloFrameBytes: DEFAULT_MAX_PRE_HELLO_FRAME_BYTES,
  frameTimeoutMs: DEFAULT_FRAME_TIMEOUT_MS,
});

/** Why a budget refused: frames (first four), connections before HELLO, connection rates (see src/transport/admission.ts). */
export const BUDGET_REFUSAL_REASONS = [
  'pre_hello_bytes',
  'connection_bytes',
  'node_bytes',
  'frame_timeout',
  'pre_hello_connections',
  'pre_hello_per_source',
  'hello_timeout',
  'connection_rate',
  'connection_rate_per_source',
] as const;
export type BudgetRefusalReason = (typeof BUDGET_REFUSAL_REASONS)[number];

/** A peer went past one of this node's budgets; it keeps serving everyone else. */
export class BudgetExceededError extends MaculaError {
  readonly reason: BudgetRefusalReason;

  constructor(reason: BudgetRefusalReason, message: string) {
    super('MACULA_ERR_BUDGET', message);
    this.reason = reason;
  }

  /** Whether the whole connection is dropped (its own bound), not only the stream (the node's shared bound). */
  get closesConnection(): boolean {
    return this.reason !== 'node_bytes';
  }
}

export function emptyRefusals(): Record<BudgetRefusalReason, number> {
  return Object.fromEntries(BUDGET_REFUSAL_REASONS.map((r) => [r, 0])) as Record<BudgetRefusalReason, number>;
}

/** The node-wide budget; one account per connection draws on it. */
export class FrameBudget {
  readonly nodeLimit: number;
  readonly connectionLimit: number;
  readonly preHelloLimit: number;
  readonly frameTimeoutMs: number;
  readonly refusals = emptyRefusals();
  #used = 0;

  constructor(options: FrameBudgetOptions = {}) {
    const int = (name: string, value: number) => intOption(`session option ${name}`, value, 1);
    this.nodeLimit = int('maxNodeFrameBytes', options.maxNodeFrameBytes ?? DEFAULT_MAX_NODE_FRAME_BYTES);
    this.connectionLimit = int('maxConnectionFrameBytes', options.maxConnectionFrameBytes ?? DEFAULT_MAX_CONNECTION_FRAME_BYTES);
    this.preHelloLimit = int('maxPreHelloFrameBytes', options.maxPreHelloFrameBytes ?? DEFAULT_MAX_PRE_HELLO_FRAME_BYTES);
    this.frameTimeoutMs = int('frameTimeoutMs', options.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS);
  }

  /** Bytes reserved for unfinished frames now, over every connection. */
  get used(): number {
    return this.#used;
  }

  account(): BudgetAccount {
    return new BudgetAccount(this);
  }

  /** Counts a refusal and returns its error. */
  refuse(reason: BudgetRefusalReason, message: string): BudgetExceededError {
    this.refusals[reason]++;
    return new BudgetExceededError(reason, message);
  }

  /** @internal */
  take(n: number): boolean {
    if (this.#used + n > this.nodeLimit) return false;
    this.#used += n;
    return true;
  }

  /** @internal */
  give(n: number): void {
    this.#used -= n;
  }
}

/** One connection's share: its own limit (small until HELLO) within the node's. */
export class BudgetAccount {
  readonly #budget: FrameBudget;
  #used = 0;
  #greeted = false;

  constructor(budget: FrameBudget) {
    this.#budget = budget;
  }

  get used(): number {
    return this.#used;
  }

  get limit(): number {
    return this.#greeted ? this.#budget.connectionLimit : this.#budget.preHelloLimit;
  }

  get frameTimeoutMs(): number {
    return this.#budget.frameTimeoutMs;
  }

  /** The peer's HELLO was accepted: the connection gets its full budget. */
  greet(): void {
    this.#greeted = true;
  }

  /** Reserves `n` bytes or throws BudgetExceededError (counted). */
  reserve(n: number): void {
    const limit = this.limit;
    if (this.#used + n > limit) {
      throw this.#budget.refuse(
        this.#greeted ? 'connection_bytes' : 'pre_hello_bytes',
        `a frame of ${n} bytes does not fit the ${limit} bytes of unfinished frames this connection may buffer` +
          (this.#greeted ? '' : ' before its HELLO is accepted; send HELLO first'),
      );
    }
    if (!this.#budget.take(n)) {
      throw this.#budget.refuse('node_bytes', `a frame of ${n} bytes does not fit the ${this.#budget.nodeLimit} bytes of unfinished frames this node buffers; retry later`);
    }
    this.#used += n;
  }

  release(n: number): void {
    this.#used -= n;
    this.#budget.give(n);
  }

  /** Counts a refusal of this connection's peer (e.g. a frame timeout) and returns its error. */
  refuse(reason: BudgetRefusalReason, message: string): BudgetExceededError {
    return this.#budget.refuse(reason, message);
  }
}
