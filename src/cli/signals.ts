/** Signal handling shared by the commands that run until interrupted. */

/** After the first signal, the longest a clean stop may take before the process exits anyway. */
export const DEFAULT_STOP_GRACE_MS = 15_000;

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15 };

/**
 * Resolves on the first SIGINT or SIGTERM. Installing the listeners replaces
 * Node's default (exit at once), so the command can close its connection and
 * withdraw what it registered before it exits. Once it has resolved, the
 * listeners are removed: a second signal ends the process at once.
 *
 * A clean stop that has not ended the process `graceMs` after the signal
 * (default 15 s) is cut short: one line on stderr and exit 128 + the signal
 * number, as a shell reports a process killed by it. A stop, or a step the
 * command is still waiting on (a connect, a start-up), can wait on the
 * network or the disk; the signal must stop the process anyway.
 */
export function waitForSignal(options: { graceMs?: number } = {}): { promise: Promise<NodeJS.Signals>; dispose(): void } {
  const graceMs = options.graceMs ?? DEFAULT_STOP_GRACE_MS;
  let onSignal!: (sig: NodeJS.Signals) => void;
  const promise = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (sig) => {
      dispose();
      setTimeout(() => {
        process.stderr.write(`macula: did not stop within ${graceMs} ms of ${sig}; exiting now\n`);
        process.exit(128 + (SIGNAL_NUMBERS[sig] ?? 0));
      }, graceMs).unref();
      resolve(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  const dispose = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  return { promise, dispose };
}

export { setTimeout as sleep } from 'node:timers/promises';
