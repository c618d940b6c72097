import { Command, Option } from 'commander';
import { defaultDataDir, loadOrCreateIdentity, toHex } from '../../identity/identity.js';
import { writeOut } from '../output.js';

export function registerId(program: Command): void {
  program
    .command('id')
    .description("print the node's public key and node ID, creating the key if there is none yet (to issue its credential before the first start)")
    .addOption(new Option('-d, --data-dir <dir>', 'where the node key is kept').env('MACULA_DATA_DIR').default(defaultDataDir(), 'per-user data dir'))
    .option('--json', 'print { publicKey, nodeId } as JSON')
    .action(async (opts: { dataDir: string; json?: boolean }) => {
      const { identity, created } = await loadOrCreateIdentity(opts.dataDir);
      if (created) process.stderr.write(`created a node key in ${opts.dataDir}\n`);
      const publicKey = toHex(identity.publicKey);
      if (opts.json) return writeOut(`${JSON.stringify({ publicKey, nodeId: identity.nodeIdHex })}\n`);
      await writeOut(`public key  ${publicKey}\nnode ID     ${identity.nodeIdHex}\n`);
    });
}
