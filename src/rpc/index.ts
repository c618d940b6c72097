export { RpcClient, DEFAULT_CALL_TIMEOUT_MS, DEFAULT_MAX_ATTEMPTS, DEFAULT_SELECTION, DEFAULT_SUSPECT_MS, type RpcClientComponents, type RpcClientInit, type RpcClientStats } from './client.js';
export { RpcServer, DEFAULT_HANDLER_TIMEOUT_MS, type RpcServerComponents, type RpcServerInit, type RpcServerStats, type ServedOutcome } from './server.js';
export { RPC_CALL, RPC_RESULT } from './messages.js';
export { MAX_PROCEDURE_LENGTH, SERVICE_PREFIX, serviceName } from './procedure.js';
export {
  BadArgumentsError,
  InvalidProcedureError,
  NoProvidersError,
  NoSuchProcedureError,
  RemoteCallError,
  RpcTimeoutError,
  RpcUnavailableError,
  TooManyInFlightError,
  type AttemptFailure,
  type FailureKind,
} from './errors.js';
export type {
  CallOptions,
  CallOutcome,
  LocalInvoker,
  RegisterOptions,
  RpcAdvertiser,
  RpcCaller,
  RpcContext,
  RpcHandler,
  RpcRegistry,
  RpcRequester,
  RpcTransport,
  Selection,
} from './types.js';
