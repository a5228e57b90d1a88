/** The README's job file example, as the user copies it (between the job-example markers). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../../src/util/package-root';

export function readmeJobExample(): string {
  const readme = fs.readFileSync(path.join(packageRoot(), 'README.md'), 'utf8');
  const m = /<!-- job-example:start -->\n```json\n([\s\S]*?)```\n<!-- job-example:end -->/.exec(readme);
  if (!m) throw new Error('README.md has no job example between <!-- job-example:start --> and <!-- job-example:end -->');
  return m[1];
}
