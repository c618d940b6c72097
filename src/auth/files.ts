/**
 * Files of a secured realm: the authority's key (PKCS#8 PEM, 0600, created
 * with O_EXCL, never overwritten) with a public `realm.json` beside it, and
 * credential files: one `MACULA CREDENTIAL` block per token of the chain,
 * issuer first, followed for a client by the client's own private key, as a
 * NATS `.creds` file carries a JWT and its seed. Credential files are 0600.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Identity, toHex } from '../identity/identity.js';
import { ConfigError } from '../util/errors.js';

export const AUTHORITY_KEY_FILE = 'authority.key';
export const REALM_FILE = 'realm.json';
/** Same bound as HELLO's realm field. */
export const MAX_REALM_BYTES = 64;

const BLOCK = 'MACULA CREDENTIAL';
const BLOCK_RE = new RegExp(`-----BEGIN ${BLOCK}-----\\s*([A-Za-z0-9_\\-.]+)\\s*-----END ${BLOCK}-----`, 'g');
const KEY_RE = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/;

export function validateRealmName(realm: string): void {
  const bytes = Buffer.byteLength(realm);
  if (bytes === 0 || bytes > MAX_REALM_BYTES) throw new ConfigError(`a realm name has 1 to ${MAX_REALM_BYTES} bytes, got ${bytes}`);
}

/** Writes a file that must not exist yet, readable by its owner only. */
async function writeSecret(file: string, text: string, what: string): Promise<void> {
  try {
    await writeFile(file, text, { mode: 0o600, flag: 'wx' });
    await chmod(file, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new ConfigError(`${file} exists already; a ${what} is never overwritten: choose another path or move the old one away`);
    throw new ConfigError(`cannot write the ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Creates a realm authority in `dir`: its key file and realm.json. */
export async function createAuthority(dir: string, realm: string): Promise<{ identity: Identity; keyFile: string }> {
  validateRealmName(realm);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ConfigError(`cannot create ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const identity = Identity.generate();
  const keyFile = join(dir, AUTHORITY_KEY_FILE);
  await writeSecret(keyFile, identity.toPem(), 'realm authority key');
  const info = `${JSON.stringify({ realm, authority: toHex(identity.publicKey) }, null, 2)}\n`;
  try {
    await writeFile(join(dir, REALM_FILE), info, { mode: 0o644, flag: 'wx' });
  } catch (err) {
    throw new ConfigError(`cannot write ${join(dir, REALM_FILE)}: ${(err as Error).message}`, { cause: err });
  }
  return { identity, keyFile };
}

/** The authority key and, from realm.json beside it, the realm's name (undefined when there is no realm.json). */
export async function loadAuthority(keyFile: string): Promise<{ identity: Identity; realm: string | undefined }> {
  let pem: string;
  try {
    pem = await readFile(keyFile, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the authority key ${keyFile}: ${(err as Error).message}`, { cause: err });
  }
  let identity: Identity;
  try {
    identity = Identity.fromPem(pem);
  } catch (err) {
    throw new ConfigError(`${keyFile} is not an Ed25519 private key (${(err as Error).message})`, { cause: err });
  }
  let realm: string | undefined;
  try {
    const info = JSON.parse(await readFile(join(dirname(keyFile), REALM_FILE), 'utf8')) as { realm?: unknown; authority?: unknown };
    if (typeof info.realm === 'string') realm = info.realm;
    if (info.authority !== undefined && info.authority !== toHex(identity.publicKey)) {
      throw new ConfigError(`${join(dirname(keyFile), REALM_FILE)} names another authority than ${keyFile}`);
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`cannot read ${REALM_FILE} beside ${keyFile}: ${(err as Error).message}`);
  }
  return { identity, realm };
}

export function formatCredentialFile(chain: readonly string[], key: Identity | undefined, comment: string): string {
  let out = `# ${comment}\n# Keep this file secret: it lets its holder act with the permissions it grants.\n`;
  for (const token of chain) out += `-----BEGIN ${BLOCK}-----\n${token}\n-----END ${BLOCK}-----\n`;
  if (key) out += key.toPem();
  return out;
}

export async function writeCredentialFile(file: string, chain: readonly string[], key: Identity | undefined, comment: string): Promise<void> {
  await writeSecret(file, formatCredentialFile(chain, key, comment), 'credential file');
}

/** The token chain (issuer first) and, for a client's file, its private key. */
export function parseCredentialFile(text: string, file: string): { chain: string[]; key: Identity | undefined } {
  const chain = [...text.matchAll(BLOCK_RE)].map((m) => m[1]!);
  if (chain.length === 0) throw new ConfigError(`${file} holds no "${BLOCK}" block; is it a credential file made by \`macula cred issue\`?`);
  const pem = KEY_RE.exec(text)?.[0];
  let key: Identity | undefined;
  if (pem !== undefined) {
    try {
      key = Identity.fromPem(pem);
    } catch (err) {
      throw new ConfigError(`the private key in ${file} cannot be read (${(err as Error).message})`, { cause: err });
    }
  }
  return { chain, key };
}

export async function readCredentialFile(file: string): Promise<{ chain: string[]; key: Identity | undefined }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the credential file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseCredentialFile(text, file);
}
