#!/usr/bin/env node
// `macula --version` answers without loading the command-line parser or the library.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { VERSION } = await import('../dist/src/cli/version.js');
  process.stdout.write(`${VERSION}\n`);
} else {
  // The command is a bundle (dist/cli/, built by scripts/build-cli.mjs): a few
  // files to load instead of dozens. With MACULA_DEBUG its stack traces name
  // the TypeScript sources (the bundle's source maps are read only then).
  if (process.env.MACULA_DEBUG) process.setSourceMapsEnabled(true);
  await import('../dist/cli/main.js');
}
