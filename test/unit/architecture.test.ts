/**
 * The package layering of docs/ARCHITECTURE.md, checked on the source: a package imports only
 * packages below it. Reads every `src/**\/*.ts` import of a relative path (static and dynamic).
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../../src/util/package-root';

/** Highest first. `index` is src/index.ts (the public surface), `version` src/version.ts. */
const LAYERS: readonly string[] = [
  'cli', 'chaos', 'index', 'replica', 'rest', 'dispatcher', 'jobmaster', 'store', 'resources', 'taskmanager',
  'election', 'metrics', 'config', 'jobgraph', 'ensemble', 'client', 'zk', 'http', 'security', 'version', 'util',
];

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

function packageOf(srcDir: string, file: string): string {
  const rel = path.relative(srcDir, file).split(path.sep);
  return rel.length === 1 ? rel[0].replace(/\.ts$/, '') : rel[0];
}

test('no package imports a package above it', (t) => {
  const srcDir = path.join(packageRoot(), 'src');
  const violations: string[] = [];
  const unknown = new Set<string>();
  for (const file of sourceFiles(srcDir)) {
    const from = packageOf(srcDir, file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import\()\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const to = packageOf(srcDir, path.resolve(path.dirname(file), m[1]));
      if (to === from) continue;
      for (const p of [from, to]) if (!LAYERS.includes(p)) unknown.add(p);
      if (LAYERS.indexOf(to) < LAYERS.indexOf(from)) violations.push(`${path.relative(srcDir, file)} (${from}) imports ${m[1]} (${to})`);
    }
  }
  t.deepEqual([...unknown], [], 'every package has a place in LAYERS');
  t.deepEqual(violations, []);
});
