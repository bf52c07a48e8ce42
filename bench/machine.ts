/**
 * The machine a bench ran on, written beside its figures: a rate means little without the CPU, the
 * kernel, the Node version and how busy the machine was.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  cpuModel: string;
  /** Cores Node may use (os.availableParallelism). */
  cores: number;
  /** `uname -sr`. */
  kernel: string;
  /** /etc/os-release PRETTY_NAME, when there is one. */
  distribution: string | null;
  node: string;
  memoryBytes: number;
}

function distribution(): string | null {
  try {
    const match = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    return match?.[1] ?? null;
  } catch {
    return null;
  }
}

export function describeMachine(): Machine {
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    kernel: `${os.type()} ${os.release()}`,
    distribution: distribution(),
    node: process.version,
    memoryBytes: os.totalmem(),
  };
}
