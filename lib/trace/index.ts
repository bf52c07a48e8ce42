/**
 * simopen/trace: record TCP state changes (the kernel tracepoint, or /proc/net/tcp sampled when
 * tracefs is unusable), build one path per connection side, classify how connections opened and
 * closed, and print them. The public surface of lib/trace (docs/api.md).
 */
export type { Endpoint, PortRange } from '../core/types.ts';
export { type LiveTrace, type LiveTraceOptions, startLiveTrace } from './connectionLiveTrace.ts';
export {
  buildConnectionPaths,
  type ConnectionSummary,
  classifyClose,
  classifyOpen,
  sideOpen,
  summarizeConnections,
} from './connectionPaths.ts';
export {
  formatEndpoints,
  formatPath,
  formatSourceLabel,
  formatStates,
  formatTraceReport,
} from './formatPaths.ts';
export { probeTracefs, type TracefsProbe } from './kernelTracepoint.ts';
export { type SourceChoice, type StateTrace, type StateTraceOptions, startStateTrace } from './startTrace.ts';
export {
  CLOSE_KINDS,
  type CloseKind,
  type ConnectionPair,
  type ConnectionPath,
  OPEN_KINDS,
  type OpenKind,
  type PathStep,
  type ResetReceived,
  type SideOpen,
  type SourceLabel,
  type StateChange,
  TCP_STATES,
  type TcpState,
  type TraceEvent,
  type TraceSource,
} from './types.ts';
