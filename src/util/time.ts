/**
 * Waits for `op` (a promise, or a function whose result is awaited) to
 * settle, at most `ms`; whether it succeeded does not matter. For best-effort
 * clean-up on shutdown, where a peer that no longer answers must not hold
 * the caller up.
 */
export function settleWithin(op: Promise<unknown> | (() => unknown), ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    (typeof op === 'function' ? Promise.resolve().then(op) : op).then(done, done);
  });
}
