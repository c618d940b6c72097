import { Command, InvalidArgumentError, Option } from 'commander';
import { inspectCredential, issueCredential, type CredentialRole } from '../../auth/credential.js';
import { loadAuthority, readCredentialFile, writeCredentialFile } from '../../auth/files.js';
import { ACTIONS, ALL_PERMISSIONS, Permissions, type PermissionSpec } from '../../auth/permissions.js';
import { Identity, loadOrCreateIdentity, publicKeyFromHex, shortId, toHex } from '../../identity/identity.js';
import { ConfigError } from '../../util/errors.js';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MAX_REVOCATIONS, signRevocations } from '../../auth/revocation.js';
import { addClientOptions, connectClient, type ClientOptions } from '../options.js';
import { toJson, writeOut } from '../output.js';

const DAY_MS = 86_400_000;
const MAX_TTL_MS = 3650 * DAY_MS;
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS };

export function parseTtl(value: string): number {
  const m = /^(\d+)([smhd])$/.exec(value.trim());
  const ms = m ? Number(m[1]) * UNITS[m[2]!]! : NaN;
  if (!(ms > 0 && ms <= MAX_TTL_MS)) throw new InvalidArgumentError('expected a lifetime such as 90m, 12h or 30d (at most 3650d).');
  return ms;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function parseRole(value: string): CredentialRole {
  if (value !== 'node' && value !== 'client' && value !== 'issuer') throw new InvalidArgumentError('expected node, client or issuer.');
  return value;
}

interface IssueFlags {
  authority?: string;
  issuer?: string;
  role: CredentialRole;
  subject?: string;
  realm?: string;
  ttl: number;
  out: string;
  admin?: boolean;
  [flag: string]: unknown;
}

/** Permissions from the flags; none given means everything (as a NATS user without permissions). */
function permissionsFrom(flags: IssueFlags): PermissionSpec {
  const spec: PermissionSpec = {};
  let any = flags.admin === true;
  for (const action of ACTIONS) {
    const allow = flags[action] as string[] | undefined;
    const deny = flags[`deny${action[0]!.toUpperCase()}${action.slice(1)}`] as string[] | undefined;
    if (allow || deny) {
      spec[action] = { ...(allow ? { allow } : {}), ...(deny ? { deny } : {}) };
      any = true;
    }
  }
  if (!any) return ALL_PERMISSIONS;
  if (flags.admin) spec.admin = true;
  try {
    Permissions.fromSpec(spec);
  } catch (err) {
    throw new ConfigError(`bad permission pattern: ${(err as Error).message}`);
  }
  return spec;
}

async function subjectKey(subject: string): Promise<Uint8Array> {
  const key = publicKeyFromHex(subject);
  if (key) return key;
  // Otherwise a node's data dir: its key, created now if the node never started.
  return (await loadOrCreateIdentity(subject)).identity.publicKey;
}

export function registerCred(program: Command): void {
  const cred = program.command('cred').description('issue and inspect credentials of a secured realm');
  const issue = cred
    .command('issue')
    .description('issue a credential signed by the realm authority (or by a delegated issuer)')
    .option('--authority <key file>', 'the realm authority key (authority.key from `macula realm create`)')
    .option('--issuer <creds file>', 'sign as a delegated issuer instead (a credential file of role issuer)')
    .requiredOption('--role <role>', 'node, client or issuer', parseRole)
    .option('--subject <data dir | public key hex>', "the subject: a node's data dir or a public key; without it a new key pair is made and written into the file")
    .option('--realm <name>', 'the realm (default: from realm.json beside the authority key)')
    .addOption(new Option('--ttl <duration>', 'lifetime, e.g. 12h or 30d').default(30 * DAY_MS, '30d').argParser(parseTtl))
    .option('--admin', 'may see other peers (stats, peers)')
    .requiredOption('-o, --out <file>', 'where to write the credential (0600; never overwritten)');
  for (const action of ACTIONS) {
    const Deny = `--deny-${action}`;
    issue.option(`--${action} <pattern>`, `allow ${action} on a topic/procedure pattern (repeatable)`, collect);
    issue.option(`${Deny} <pattern>`, `deny ${action} on a pattern (repeatable)`, collect);
  }
  issue.action(async (flags: IssueFlags) => {
    if ((flags.authority === undefined) === (flags.issuer === undefined)) throw new ConfigError('give exactly one of --authority <key file> and --issuer <creds file>');
    let signer: Identity;
    let realm = flags.realm;
    let prefix: string[] = [];
    if (flags.authority !== undefined) {
      const auth = await loadAuthority(flags.authority);
      signer = auth.identity;
      realm ??= auth.realm;
    } else {
      const held = await readCredentialFile(flags.issuer!);
      const claims = inspectCredential(held.chain[held.chain.length - 1]!);
      if (claims.role !== 'issuer' || held.key === undefined || held.chain.length !== 1) {
        throw new ConfigError(`${flags.issuer} is not an issuer credential with its key (issue one with --role issuer and no --subject)`);
      }
      signer = held.key;
      realm ??= claims.realm;
      prefix = held.chain;
    }
    if (realm === undefined) throw new ConfigError('no realm.json beside the authority key: give --realm <name>');
    if (flags.role === 'node' && flags.subject === undefined) throw new ConfigError("a node credential needs --subject <the node's data dir or public key>");
    const ownKey = flags.subject === undefined ? Identity.generate() : undefined;
    const subject = ownKey?.publicKey ?? (await subjectKey(flags.subject!));
    const permissions = permissionsFrom(flags);
    const token = await issueCredential(signer, { realm, role: flags.role, subject, permissions, ttlMs: flags.ttl });
    const chain = [...prefix, token];
    const expires = new Date(inspectCredential(token).expiresAt).toISOString();
    await writeCredentialFile(flags.out, chain, ownKey, `Macula ${flags.role} credential for realm "${realm}", subject ${toHex(subject)}, expires ${expires}`);
    await writeOut(`credential ${flags.out} ${flags.role} ${shortId(toHex(subject))} realm ${realm} expires ${expires}\n`);
  });

  cred
    .command('show')
    .description("print a credential's subject, realm, role, permissions and validity (not verified: the node does that)")
    .argument('<file>', 'a credential file')
    .option('--json', 'print as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const { chain, key } = await readCredentialFile(file);
      const shown = chain.map((t) => inspectCredential(t));
      const leaf = shown[shown.length - 1]!;
      if (opts.json) return writeOut(`${toJson({ ...leaf, chain: shown, hasKey: key !== undefined }, 2)}\n`);
      const lines = [
        `subject      ${leaf.subjectHex}${key ? ' (its private key is in the file)' : ''}`,
        `realm        ${leaf.realm}`,
        `role         ${leaf.role}`,
        `issuer       ${leaf.issuerHex}${chain.length > 1 ? ' (delegated)' : ''}`,
        `valid        ${new Date(leaf.notBefore).toISOString()} to ${new Date(leaf.expiresAt).toISOString()}${leaf.expiresAt < Date.now() ? ' (EXPIRED)' : ''}`,
        `id           ${leaf.id}`,
      ];
      for (const action of ACTIONS) {
        const rule = leaf.permissions[action];
        lines.push(`${action.padEnd(12)} allow ${rule?.allow?.join(' ') || '(nothing)'}${rule?.deny?.length ? `; deny ${rule.deny.join(' ')}` : ''}`);
      }
      lines.push(`admin        ${leaf.permissions.admin === true ? 'yes' : 'no'}`);
      await writeOut(`${lines.join('\n')}\n`);
    });

  addClientOptions(
    cred
      .command('revoke')
      .description('revoke a credential (by its file or id) or every credential of a subject key, and hand the new list to a node')
      .argument('<target>', 'a credential file, a credential id (32 hex digits) or a subject public key (64 hex digits)')
      .requiredOption('--authority <key file>', 'the realm authority key; the list is kept in revocations.json beside it'),
  ).action(async (target: string, opts: ClientOptions & { authority: string }) => {
    const { identity, realm } = await loadAuthority(opts.authority);
    if (realm === undefined) throw new ConfigError(`no realm.json beside ${opts.authority}: cannot tell which realm the list is for`);
    const entry = await revocationEntry(target);
    const file = join(dirname(opts.authority), REVOCATIONS_FILE);
    const state = await readRevocationState(file);
    const now = Date.now();
    const kept = state.entries.filter((e) => e.until > now && e.entry !== entry.entry);
    if (kept.length >= MAX_REVOCATIONS) throw new ConfigError(`the revocation list is full (${MAX_REVOCATIONS} entries in force); revoke a whole subject key, or wait for revoked credentials to expire`);
    const next = { seq: Math.max(state.seq + 1, now), entries: [...kept, entry] };
    const token = await signRevocations(identity, realm, next.entries.map((e) => e.entry), next.seq);
    await writeRevocationState(file, next);
    const client = await connectClient({ ...opts, realm: opts.realm ?? realm });
    try {
      const r = await client.revoke(token);
      await writeOut(`revoked ${entry.entry}: list ${next.seq} with ${next.entries.length} entries${r.adopted ? '' : ' (the node already had this list or a newer one)'}\n`);
    } finally {
      await client.close();
    }
  });
}

const REVOCATIONS_FILE = 'revocations.json';
/** How long a subject key's revocation stays on the list: as long as a credential can live. */
const SUBJECT_REVOCATION_MS = MAX_TTL_MS;

interface RevocationState {
  seq: number;
  entries: { entry: string; until: number }[];
}

async function revocationEntry(target: string): Promise<{ entry: string; until: number }> {
  // a subject key or a credential id whose expiry we cannot know: kept as long as any credential can live
  if (/^([0-9a-fA-F]{32}|[0-9a-fA-F]{64})$/.test(target)) return { entry: target.toLowerCase(), until: Date.now() + SUBJECT_REVOCATION_MS };
  const { chain } = await readCredentialFile(target);
  const leaf = inspectCredential(chain[chain.length - 1]!);
  return { entry: leaf.id, until: leaf.expiresAt };
}

async function readRevocationState(file: string): Promise<RevocationState> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as RevocationState;
    if (typeof v.seq !== 'number' || !Array.isArray(v.entries)) throw new Error('unexpected shape');
    return v;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { seq: 0, entries: [] };
    throw new ConfigError(`cannot read the revocation list ${file}: ${(err as Error).message}`);
  }
}

/** Written to a temporary file first, so an interrupted write never loses the list. */
async function writeRevocationState(file: string, state: RevocationState): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, file);
}
