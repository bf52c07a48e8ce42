/**
 * simopen/stress: run a stress plan (thousands of simultaneous-open pairs, in the sandbox or on the
 * host loopback) from a script and get its result. The public surface of lib/stress (docs/api.md).
 */
export { ExitError, UsageError } from '../core/errors.ts';
export type { PortRange } from '../core/types.ts';
export { EXIT_NO_SANDBOX } from './chooseMode.ts';
export { printResult } from './printResult.ts';
export { runStressPlan } from './runStressPlan.ts';
export {
  CLOSE_MODES,
  type CloseMode,
  type CloseOutcome,
  EARLY_SYN_ACTIONS,
  type EarlySyn,
  type HoldReport,
  MODES,
  type Mode,
  OPEN_MODES,
  type OpenMode,
  type OpenReport,
  PAIR_ERRORS,
  type PairLogRecord,
  type Percentiles,
  SOCKET_KINDS,
  type SocketKind,
  type StressPlan,
  type StressResult,
} from './types.ts';
