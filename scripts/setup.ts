/**
 * setup.ts (npm run setup): make this machine ready for simopen in one step. As root it installs the
 * missing system packages (apt-get) and mounts tracefs; otherwise it prints the command to run.
 */
import { parseFlags, runMain } from '../lib/core/cli.ts';
import { EXIT } from '../lib/core/errors.ts';
import { probeSystem, runPlanCommand } from '../lib/setup/setupSystem.ts';
import { planSetup, SYSTEM_PACKAGES } from '../lib/setup/systemPackages.ts';

const USAGE = 'setup.ts [--check]';

/** setup.ts exit codes beyond the shared ones. */
const SETUP_EXIT = {
  ...EXIT,
  /** Packages are missing and were not installed (not root, no apt-get, or --check): the command is printed. */
  missing: 3,
} as const;

const HELP = `usage: ${USAGE}

Installs the system packages simopen needs that are missing here (Debian names, apt-get), and mounts
tracefs when the kernel has it and nobody mounted it. Needs root to change anything; without root it
prints the exact command to run. Packages, and what needs each:
${SYSTEM_PACKAGES.map((pkg) => `  ${pkg.name.padEnd(11)} ${pkg.neededBy}`).join('\n')}

  --check      say what is missing, change nothing
  -h, --help   this text

exit codes: 0 ready (nothing missing, or installed now), 1 an install or mount failed,
            2 bad usage, 3 packages missing and not installed (not root, no apt-get, or --check:
            the command to run is printed), 130 interrupted`;

runMain('setup', USAGE, async () => {
  const { values } = parseFlags(
    process.argv.slice(2),
    { check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    false,
  );
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return EXIT.ok;
  }
  const out = (line: string) => process.stdout.write(`setup: ${line}\n`);
  const facts = probeSystem();
  const plan = planSetup(facts, values.check ?? false);
  for (const pkg of plan.missing) out(`missing ${pkg.name}: needed by ${pkg.neededBy}`);

  let code: number = EXIT.ok;
  const packages = plan.packages;
  if (packages.action === 'none') out(`all ${SYSTEM_PACKAGES.length} system packages are installed`);
  else if (packages.action === 'by-hand') {
    out("no apt-get here: install these (Debian names) with this system's package manager");
    code = SETUP_EXIT.missing;
  } else if (packages.action === 'print') {
    out(`${values.check ? '--check' : 'not root'}: nothing installed; to install, run:`);
    process.stdout.write(`  ${packages.command}\n`);
    if (!values.check) out('(or run npm run setup as root, which also mounts tracefs)');
    code = SETUP_EXIT.missing;
  } else {
    for (const command of packages.commands) {
      out(`running ${command.join(' ')}`);
      const outcome = await runPlanCommand(command);
      if (outcome.interrupted) return EXIT.interrupted;
      if (!outcome.ok) {
        out(`${command.join(' ')} failed (exit ${outcome.code})`);
        return EXIT.failure;
      }
    }
    const still = probeSystem().missing;
    if (still.length) {
      out(`still missing after apt-get: ${still.map((pkg) => pkg.name).join(' ')}`);
      return EXIT.failure;
    }
    out(`installed ${plan.missing.map((pkg) => pkg.name).join(' ')}`);
  }

  const tracefs = plan.tracefs;
  if (tracefs.action === 'note') out(tracefs.text);
  else if (tracefs.action === 'mount') {
    out(`mounting tracefs: ${tracefs.command.join(' ')}`);
    const outcome = await runPlanCommand(tracefs.command);
    if (outcome.interrupted) return EXIT.interrupted;
    if (!outcome.ok) {
      out(`mounting tracefs failed (exit ${outcome.code})`);
      return EXIT.failure;
    }
  } else if (facts.tracefs.mounted) out('tracefs is mounted');
  if (code === EXIT.ok) out('ready');
  return code;
});
