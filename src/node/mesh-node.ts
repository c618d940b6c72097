/**
 * MeshNode: the composition root. Owns the identity, the transport, the
 * connection pool and the messenger, and wires the feature modules to them.
 */
import { EventEmitter } from 'node:events';
import { Identity, loadOrCreateIdentity, defaultDataDir } from '../identity/identity.js';
import { ConnectionPool, type ConnectionPoolInit } from '../transport/pool.js';
import { QuicTransport } from '../transport/quic.js';
import { MemoryNetwork, MemoryTransport } from '../transport/memory.js';
import type { PeerAddress, Transport, TransportOptions } from '../transport/types.js';
import { ConfigError, StoppedError } from '../util/errors.js';
import { PING, PONG } from '../wire/messages.js';
import { Messenger, DEFAULT_REALM, type MessengerInit } from './messenger.js';
import type { PeerInfo } from './peer-session.js';

export const DEFAULT_PORT = 9443;
export const DEFAULT_HOST = '0.0.0.0';

export interface MeshNodeOptions extends TransportOptions, ConnectionPoolInit, MessengerInit {
  /** UDP port to listen on; 0 picks a free port. Default 9443. */
  port?: number;
  /** Address to bind. Default 0.0.0.0. */
  host?: string;
  /** Where the node key lives. Default: $MACULA_DATA_DIR or the per-user data dir. */
  dataDir?: string;
  /** Use this identity instead of the key file in dataDir. */
  identity?: Identity;
  /** Nodes to join through; none makes this node the first of a new mesh. */
  bootstrap?: PeerAddress[];
  /** Run over the in-process memory transport of this network instead of QUIC. */
  memoryNetwork?: MemoryNetwork;
}

export interface NodeStatus {
  nodeId: string;
  realm: string;
  listen: PeerAddress | undefined;
  transport: string;
  connections: number;
  startedAt: number;
}

export class MeshNode extends EventEmitter {
  readonly identity: Identity;
  readonly transport: Transport;
  readonly pool: ConnectionPool;
  readonly messenger: Messenger;
  readonly options: MeshNodeOptions;
  #state: 'new' | 'running' | 'stopped' = 'new';
  #startedAt = 0;

  constructor(identity: Identity, options: MeshNodeOptions = {}) {
    super();
    this.identity = identity;
    this.options = options;
    this.transport = options.memoryNetwork
      ? new MemoryTransport({ identity, network: options.memoryNetwork }, options)
      : new QuicTransport({ identity }, options);
    this.pool = new ConnectionPool({ transport: this.transport }, options);
    this.messenger = new Messenger(
      {
        transport: this.transport,
        pool: this.pool,
        events: {
          hello: (peer) => this.emit('peer', peer),
          protocolError: (err, peer) => this.emit('protocol-error', err, peer),
        },
      },
      options,
    );
    this.messenger.handle(PING, () => ({ t: PONG.type }));
  }

  get nodeId(): string {
    return this.identity.nodeIdHex;
  }

  get realm(): string {
    return this.messenger.realm;
  }

  get listenAddress(): PeerAddress | undefined {
    return this.transport.listenAddress;
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  async start(): Promise<this> {
    if (this.#state !== 'new') throw new StoppedError('this node was already started once; create a new MeshNode');
    const port = this.options.port ?? DEFAULT_PORT;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port must be an integer in 0..65535, got ${port}`);
    await this.transport.listen({ host: this.options.host ?? DEFAULT_HOST, port });
    this.messenger.start();
    this.#state = 'running';
    this.#startedAt = Date.now();
    return this;
  }

  /** Round trip to another node (dialing it if needed); resolves with the RTT in ms. */
  async ping(target: PeerAddress, nodeId?: string): Promise<number> {
    const t0 = performance.now();
    await this.messenger.request({ address: target, ...(nodeId ? { nodeId } : {}) }, { t: PING.type });
    return performance.now() - t0;
  }

  peers(): PeerInfo[] {
    return this.messenger.sessions();
  }

  status(): NodeStatus {
    return {
      nodeId: this.nodeId,
      realm: this.realm,
      listen: this.listenAddress,
      transport: this.transport.kind,
      connections: this.pool.size,
      startedAt: this.#startedAt,
    };
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.messenger.stop();
    await this.transport.close();
  }
}

/** Creates and starts a node: loads (or creates) the key in the data dir unless an identity is given. */
export async function createNode(options: MeshNodeOptions = {}): Promise<MeshNode> {
  const identity = options.identity ?? (await loadOrCreateIdentity(options.dataDir ?? defaultDataDir())).identity;
  const node = new MeshNode(identity, { realm: DEFAULT_REALM, ...options });
  return node.start();
}
