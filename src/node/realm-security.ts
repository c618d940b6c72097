/**
 * Where a secured realm's permissions are enforced: one table from message
 * type to the permission a request needs, checked by the messenger before
 * the request reaches its handler, with the credential the sender's HELLO
 * proved. Requests of light clients (GW_*) are checked against the client's
 * credential and the node's own; requests of nodes (PUBLISH, RPC_CALL)
 * against the sending node's, which covers what its clients asked it to do.
 */
import type { RealmGuard } from '../auth/realm-guard.js';
import type { Action } from '../auth/permissions.js';
import { ForbiddenError } from '../auth/errors.js';
import { serveSubject } from '../auth/record-auth.js';
import { bytesEqual } from '../dht/id.js';
import { dhtKey } from '../dht/key.js';
import { STORE } from '../dht/messages.js';
import { fromWireRecord } from '../dht/record.js';
import { announcementKeyNamespace } from '../pubsub/announcement.js';
import { literalPrefix } from '../pubsub/topic.js';
import { registryNamespace } from '../registry/registration.js';
import { revocationsKey } from './revocation-keys.js';
import { decodeBody } from '../wire/codec.js';
import { isPlainMap } from '../wire/schema.js';
import { GW_CALL, GW_PEERS, GW_PUB, GW_REQ, GW_SEND, GW_SERVE, GW_SUB } from '../gateway/messages.js';
import { PUBLISH } from '../pubsub/messages.js';
import { RPC_CALL } from '../rpc/messages.js';
import type { Message, MessageDef, WireMessage } from '../wire/messages.js';
import type { Fields } from '../wire/schema.js';
import type { Authorizer, Messenger } from '../session/messenger.js';

interface Rule {
  action: Action;
  /** The subject the permission is checked for, read from the message. */
  subject: (msg: Message) => string;
  viaClient: boolean;
}

/** The rule of one message type, its subject read from the message as its definition types it. */
function rule<F extends Fields>(def: MessageDef<F>, action: Action, subject: (msg: WireMessage<F>) => string, viaClient: boolean): [number, Rule] {
  // Looked up by the type of a validated message, so it only ever reads messages of `def`'s shape.
  return [def.type, { action, subject: subject as (msg: Message) => string, viaClient }];
}

/** Message type → the action it needs, the subject it names, and whether it comes from a light client. */
const RULES = new Map<number, Rule>([
  rule(PUBLISH, 'pub', (m) => m.tp, false),
  rule(RPC_CALL, 'call', (m) => m.p, false),
  rule(GW_PUB, 'pub', (m) => m.tp, true),
  rule(GW_SEND, 'pub', (m) => m.tp, true),
  rule(GW_REQ, 'pub', (m) => m.tp, true),
  rule(GW_SUB, 'sub', (m) => m.pattern, true),
  rule(GW_CALL, 'call', (m) => m.p, true),
  rule(GW_SERVE, 'serve', (m) => m.p, true),
]);

export function realmAuthorizer(guard: RealmGuard): Authorizer {
  return (msg: Message, peer) => {
    if (msg.t === STORE.type) return checkStore(guard, msg);
    if (msg.t === GW_PEERS.type) {
      // other peers' addresses and IDs are for operators only
      if (!guard.mayAdminister(peer.credential)) throw new ForbiddenError('admin', 'peers');
      return;
    }
    const needed = RULES.get(msg.t);
    // withdrawing a served procedure needs no permission
    if (needed === undefined || (msg.t === GW_SERVE.type && msg.off === true)) return;
    guard.check(peer.credential, needed.action, needed.subject(msg), needed.viaClient);
  };
}

/**
 * No squatting: a record is stored only when its publisher's credential,
 * carried in the value, permits what the record claims under its key: a
 * registration of `name` (serve), a subscription announcement (sub on
 * every pattern). Tombstones claim nothing. Anything else has no place
 * under a realm key.
 */
async function checkStore(guard: RealmGuard, msg: Message): Promise<void> {
  const record = fromWireRecord(msg.record);
  if (record === undefined || record.value.length === 0) return; // malformed ones are the handler's to refuse
  let v: unknown;
  try {
    v = decodeBody(record.value);
  } catch {
    v = undefined;
  }
  if (isPlainMap(v) && typeof v.n === 'string') {
    const subject = serveSubject(v.n);
    if (bytesEqual(record.key, dhtKey(registryNamespace(guard.realm), v.n)) && (await guard.permits(record.publisher, v.c, 'serve', [subject]))) return;
    throw new ForbiddenError('serve', subject);
  }
  if (isPlainMap(v) && Array.isArray(v.ps) && v.ps.length > 0 && v.ps.every((p) => typeof p === 'string')) {
    const patterns = v.ps as string[];
    const key = dhtKey(announcementKeyNamespace(guard.realm), literalPrefix(patterns[0]!));
    if (bytesEqual(record.key, key) && (await guard.permits(record.publisher, v.c, 'sub', patterns))) return;
    throw new ForbiddenError('sub', patterns[0]!);
  }
  if (isPlainMap(v) && typeof v.rl === 'string' && bytesEqual(record.key, revocationsKey(guard.realm))) {
    // Any member may store (and so spread) a list the authority signed; a newer one is in force at once.
    if (await guard.adoptRevocations(v.rl).then(() => true, () => false)) return;
  }
  throw new ForbiddenError('serve', '(a record of unknown kind)');
}

/** How often admitted sessions are checked for expired or revoked credentials. */
export const DEFAULT_CREDENTIAL_SWEEP_MS = 5000;

/**
 * Closes the sessions whose credential expired or was revoked since they
 * were admitted; returns how many it closed.
 */
export function sweepSessions(messenger: Messenger, guard: RealmGuard): number {
  let closed = 0;
  for (const peer of messenger.sessions()) {
    if (peer.credential === undefined) continue;
    const reason = guard.recheck(peer.credential);
    if (reason === undefined) continue;
    guard.countRefusal(reason);
    peer.connection.close();
    closed++;
  }
  return closed;
}
