/**
 * One entry point for the scripts: the exact kernel trace when tracefs can be used, otherwise the
 * /proc/net/tcp sampler, with a label that says which one it is and why.
 */
import {
  type KernelTrace,
  type KernelTraceOptions,
  probeTracefs,
  startKernelTrace,
} from './kernelTracepoint.ts';
import { startProcNetTcpSampler } from './socketTableSampler.ts';
import type { SourceLabel } from './types.ts';

export type SourceChoice = 'auto' | 'kernel' | 'sampled';

/** A kernel trace or a sampler behind one interface; the instance name only for the kernel. */
export interface StateTrace extends Omit<KernelTrace, 'instance'> {
  readonly label: SourceLabel;
  readonly instance?: string;
}

export interface StateTraceOptions extends KernelTraceOptions {
  source?: SourceChoice;
  /** Sampling interval of the fallback (default 10 ms). */
  sampleIntervalMs?: number;
}

/**
 * Starts the best available tracer. 'kernel' throws when tracefs is unusable; 'auto' falls back to
 * sampling and puts the reason into the label; 'sampled' samples on purpose.
 */
export function startStateTrace(options: StateTraceOptions = {}): StateTrace {
  const source = options.source ?? 'auto';
  let reason = 'sampling was asked for (--source sampled)';
  if (source !== 'sampled') {
    const probe = probeTracefs();
    if (source === 'kernel')
      return Object.assign(startKernelTrace(options), { label: { source: 'kernel' } as SourceLabel });
    reason = probe.reason;
    if (probe.ok) {
      try {
        return Object.assign(startKernelTrace(options), { label: { source: 'kernel' } as SourceLabel });
      } catch (error) {
        // Root in a user namespace passes the probe but may not create instances: sample instead.
        reason = (error as Error).message;
      }
    }
  }
  const intervalMs = options.sampleIntervalMs ?? 10;
  const sampler = startProcNetTcpSampler({ ...options, intervalMs });
  return Object.assign(sampler, {
    label: { source: 'sampled', reason, sampleIntervalMs: intervalMs } as SourceLabel,
  });
}
