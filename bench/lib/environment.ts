/** Where and with what a run happened: machine, versions, ensemble settings. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fourLetterWord } from '../../src/ensemble/four-letter-word';
import type { LocalEnsemble } from '../../src/ensemble/local-ensemble';
import { packageRoot } from '../../src/util/package-root';
import { VERSION } from '../../src/version';

export interface Environment {
  machine: { cpus: number; cpuModel: string; memoryGiB: number; os: string; kernel: string; loadAverage1m: number };
  versions: { haDispatcher: string; node: string; zookeeperServer: string; zookeeperNpm: string; koa: string };
  ensemble: { servers: number; tickTime: number; minSessionTimeoutMs: number; maxSessionTimeoutMs: number };
}

export const ENSEMBLE_SETTINGS = { servers: 3, tickTime: 100, minSessionTimeoutMs: 400, maxSessionTimeoutMs: 30000 };

export async function describeEnvironment(ensemble: LocalEnsemble): Promise<Environment> {
  let zk = 'unknown';
  try {
    const srvr = await fourLetterWord('127.0.0.1', ensemble.servers[0].clientPort, 'srvr', 2000);
    // Debian's build reports e.g. "3.8.0-${mvngit.commit.id}": keep the release number.
    zk = /Zookeeper version: (\d+\.\d+\.\d+)/.exec(srvr)?.[1] ?? zk;
  } catch { /* reported as unknown */ }
  return {
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
      os: osName(),
      kernel: os.release(),
      loadAverage1m: Math.round(os.loadavg()[0] * 100) / 100,
    },
    versions: {
      haDispatcher: VERSION,
      node: process.version,
      zookeeperServer: zk,
      zookeeperNpm: moduleVersion('zookeeper'),
      koa: moduleVersion('koa'),
    },
    ensemble: { ...ENSEMBLE_SETTINGS },
  };
}

function moduleVersion(name: string): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function osName(): string {
  try {
    return /PRETTY_NAME="([^"]+)"/.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}
