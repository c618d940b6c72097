/** Signal handling shared by the commands that run until interrupted. */

/**
 * Resolves on the first SIGINT or SIGTERM. Installing the listeners replaces
 * Node's default (exit at once), so the command can close its connection and
 * withdraw what it registered before it exits.
 */
export function waitForSignal(): { promise: Promise<NodeJS.Signals>; dispose(): void } {
  let onSignal!: (sig: NodeJS.Signals) => void;
  const promise = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (sig) => {
      dispose();
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
