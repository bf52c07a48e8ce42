/**
 * Preloaded (node --import) into tied children by childProcess.ts: the script ends when the process
 * that started it does, without the script having to know it was started that way.
 */
import { endWithParent } from './childProcess.ts';

endWithParent();
