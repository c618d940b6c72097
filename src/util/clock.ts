/** Time source, injected so tests (and the simulator) control expiry and refresh decisions. */
export interface Clock {
  /** Current time, unix ms. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
