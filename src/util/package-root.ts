import * as fs from 'node:fs';
import * as path from 'node:path';

let cached: string | null = null;

/** The folder holding this package's package.json (works from src/ via ts and from dist/). */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) || !fs.existsSync(path.join(dir, 'zk-config'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the ha-dispatcher package root above ${__dirname}`);
    dir = up;
  }
  cached = dir;
  return dir;
}
