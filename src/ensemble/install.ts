import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ZooKeeperInstall { java: string; classpath: string; source: string }

export const INSTALL_HINT =
  'Apache ZooKeeper is not installed. On Debian/Ubuntu run: sudo apt-get update && sudo apt-get install -y zookeeper ' +
  '(or unpack an Apache ZooKeeper 3.8 release and set ZOOKEEPER_HOME to its folder).';

/** Finds a ZooKeeper server install: $ZOOKEEPER_HOME (release layout) first, then Debian's package. */
export function findZooKeeperInstall(env: NodeJS.ProcessEnv = process.env): ZooKeeperInstall {
  const java = env.JAVA_HOME ? path.join(env.JAVA_HOME, 'bin', 'java') : findOnPath('java', env);
  if (!java) throw new Error(`Java is not installed (ZooKeeper needs it). ${INSTALL_HINT}`);
  const home = env.ZOOKEEPER_HOME;
  if (home) {
    const jars = ['', 'lib'].flatMap((sub) => listJars(path.join(home, sub)));
    if (!jars.some((j) => /zookeeper-3[^/]*\.jar$/.test(j))) {
      throw new Error(`ZOOKEEPER_HOME=${home} holds no zookeeper-3.x jar. ${INSTALL_HINT}`);
    }
    return { java, classpath: jars.join(':'), source: home };
  }
  const debianJar = '/usr/share/java/zookeeper.jar';
  if (fs.existsSync(debianJar)) {
    // Debian's jar lists its dependencies in its manifest; add an SLF4J binding so server logs reach the log file,
    // and netty-codec, which the manifest misses and the TLS client port (secureClientPort) needs.
    const binding = ['/usr/share/java/slf4j-simple.jar', '/usr/share/java/netty-codec.jar'].filter((j) => fs.existsSync(j));
    return { java, classpath: [debianJar, ...binding].join(':'), source: debianJar };
  }
  throw new Error(INSTALL_HINT);
}

function listJars(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((f) => f.endsWith('.jar')).map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

function findOnPath(binary: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(':')) {
    const candidate = path.join(dir, binary);
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  return null;
}
