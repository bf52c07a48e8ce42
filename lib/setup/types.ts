/** The vocabulary of `npm run setup`: the system packages simopen needs, and what to do about them. */

/** How to tell that a package is installed: a command it provides, or a file. */
export type PackageProbe = { command: string } | { file: string };

export interface SystemPackage {
  /** The Debian package name (what apt-get installs). */
  name: string;
  provides: PackageProbe;
  /** What in simopen needs it (printed when it is missing). */
  neededBy: string;
}

/** What this machine is like, as far as setup cares. */
export interface SystemFacts {
  isRoot: boolean;
  hasAptGet: boolean;
  hasSudo: boolean;
  /** The packages whose probe failed. */
  missing: readonly SystemPackage[];
  tracefs: { mounted: boolean; inKernel: boolean };
}

/** What setup does about the packages. */
export type PackagePlan =
  | { action: 'none' }
  /** Root with apt-get: run these commands (argv lists) with DEBIAN_FRONTEND=noninteractive. */
  | { action: 'install'; commands: string[][] }
  /** Not root (or --check): print this command for the user to run. */
  | { action: 'print'; command: string }
  /** No apt-get: name the packages, nothing to run. */
  | { action: 'by-hand' };

/** What setup does about tracefs (the kernel trace reads it). */
export type TracefsPlan =
  | { action: 'none' }
  | { action: 'mount'; command: string[] }
  | { action: 'note'; text: string };

export interface SetupPlan {
  missing: readonly SystemPackage[];
  packages: PackagePlan;
  tracefs: TracefsPlan;
}
