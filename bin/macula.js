#!/usr/bin/env node
// `macula --version` answers without loading the command-line parser or the library.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { VERSION } = await import('../dist/src/cli/version.js');
  process.stdout.write(`${VERSION}\n`);
} else {
  await import('../dist/src/cli/main.js');
}
