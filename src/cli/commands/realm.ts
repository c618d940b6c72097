import { Command } from 'commander';
import { toHex } from '../../identity/identity.js';
import { createAuthority } from '../../auth/files.js';
import { writeOut } from '../output.js';

export function registerRealm(program: Command): void {
  const realm = program.command('realm').description('manage secured realms');
  realm
    .command('create')
    .description('create a realm authority: its key (0600, never overwritten) and realm.json in <dir>')
    .argument('<name>', 'the realm name (1 to 64 bytes)')
    .requiredOption('-o, --out <dir>', 'directory for authority.key and realm.json')
    .action(async (name: string, opts: { out: string }) => {
      const { identity, keyFile } = await createAuthority(opts.out, name);
      process.stderr.write(`authority key written to ${keyFile}; keep it offline and secret\n`);
      await writeOut(`realm ${name} ${toHex(identity.publicKey)}\n`);
    });
}
