/** Piscina task: one shard of the plain-Node baseline (see baselineListener.ts). */
import { type BaselineShardOptions, runBaselineShard } from './baselineListener.ts';

export default function baselineShard(options: BaselineShardOptions) {
  return runBaselineShard(options);
}
