/**
 * Loading @fails-components/webtransport, and finding out which of its
 * transports this installation has. Its HTTP/3 transport is a separate,
 * optional package with native code; without it the package logs its failed
 * attempt to load it (to stdout and stderr) as soon as it is imported, which
 * is noise for a node whose operator never asked for HTTP/3: those few lines
 * are left out while it loads, everything else is printed as usual.
 */

export const HTTP3_PACKAGE = '@fails-components/webtransport-transport-http3-quiche';

type WtModule = typeof import('@fails-components/webtransport');

let loaded: Promise<{ module: WtModule; http3: boolean }> | undefined;

const NOISE = [/^http3 loader:/, /^Problem loading http3-quiche transport/, /^Did you install @fails-components\/webtransport-transport-http3-quiche/];

/** The package and whether its HTTP/3 transport is installed (loaded once). */
export function loadWebTransport(): Promise<{ module: WtModule; http3: boolean }> {
  loaded ??= (async () => {
    const http3 = await import(HTTP3_PACKAGE).then(
      () => true,
      () => false,
    );
    if (http3) return { module: await import('@fails-components/webtransport'), http3 };
    const { log, error } = console;
    const quiet =
      (write: (...args: unknown[]) => void) =>
      (...args: unknown[]): void => {
        if (typeof args[0] === 'string' && NOISE.some((re) => re.test(args[0] as string))) return;
        write(...args);
      };
    console.log = quiet(log);
    console.error = quiet(error);
    try {
      const module = await import('@fails-components/webtransport');
      await module.quicheLoaded;
      // The server module's own attempt settles a few turns later.
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      return { module, http3 };
    } finally {
      console.log = log;
      console.error = error;
    }
  })();
  return loaded;
}
