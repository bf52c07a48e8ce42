/**
 * k8s.ts: writes the Kubernetes manifests of a distributed stress run (lib/k8s/, docs/kubernetes.md).
 */
import { runMain } from '../lib/core/cli.ts';
import { EXIT } from '../lib/core/errors.ts';
import { openOutputFiles } from '../lib/core/outputFile.ts';
import { K8S_HELP, K8S_USAGE, parseK8sOptions } from '../lib/k8s/options.ts';
import { renderManifests } from '../lib/k8s/render.ts';

runMain('k8s', K8S_USAGE, async () => {
  const parsed = parseK8sOptions(process.argv.slice(2));
  if (parsed.help) {
    process.stdout.write(`${K8S_HELP}\n`);
    return EXIT.ok;
  }
  const text = renderManifests(parsed.plan);
  if (parsed.out === undefined) {
    process.stdout.write(text);
    return EXIT.ok;
  }
  const [file] = openOutputFiles([{ option: '--out', path: parsed.out }]);
  try {
    file?.write(text);
  } finally {
    file?.close();
  }
  return EXIT.ok;
});
