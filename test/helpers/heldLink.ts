/** What stress.ts's held link (--open crossed, skew) makes lives in the sandbox's namespace: none of it may show on the host. */
import { execFileSync } from 'node:child_process';
import { processesOfThisRun } from './runProcesses.ts';

/** The held link's things seen on the host (veths, policy rules, nft tables, `ip -batch` children); empty when none. */
export function heldLinkLeftovers(): string[] {
  const left: string[] = [];
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  if (/\bsim[AB]@/.test(links)) left.push('veth simA/simB');
  const rules = execFileSync('ip', ['rule', 'show'], { encoding: 'utf8' });
  if (/10\.98\.0\.0\/16|10\.99\.0\.0\/16/.test(rules)) left.push('policy rule of the link');
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
  if (/simopen_noarp|simopen_sandbox/.test(tables)) left.push('nft table');
  // This run's processes only: another run on the machine may have its own link up right now.
  if (processesOfThisRun().some((line) => / ip -brief -force -batch/.test(line)))
    left.push('ip -batch child');
  return left;
}
