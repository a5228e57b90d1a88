/**
 * Path helpers. Every path the product builds from outside input goes through `segment()`, so an id
 * can never turn into a path trick ("..", "/", NUL, control characters).
 */
const SEGMENT = /^[A-Za-z0-9_.:-]{1,200}$/;

export function segment(name: string): string {
  if (typeof name !== 'string' || !SEGMENT.test(name) || name === '.' || name === '..' || name === 'zookeeper') {
    throw new Error(`invalid ZooKeeper path segment ${JSON.stringify(name)}`);
  }
  return name;
}

export function join(...parts: string[]): string {
  const joined = parts
    .flatMap((p) => p.split('/'))
    .filter((p) => p.length > 0)
    .join('/');
  return `/${joined}`;
}

/** Validates an absolute path made of safe segments ("/" itself is allowed). */
export function validatePath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) throw new Error(`ZooKeeper path must be absolute: ${JSON.stringify(path)}`);
  if (path === '/') return path;
  if (path.endsWith('/')) throw new Error(`ZooKeeper path must not end with "/": ${JSON.stringify(path)}`);
  for (const part of path.slice(1).split('/')) {
    // ZooKeeper's own rules: no empty, relative or control-character segments. Stricter rules for
    // names built from outside input live in segment().
    if (part === '' || part === '.' || part === '..' || /[\u0000-\u001f\u007f]/.test(part)) {
      throw new Error(`invalid ZooKeeper path ${JSON.stringify(path)}`);
    }
  }
  return path;
}

export function parent(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The sequence suffix ZooKeeper appends to sequential nodes (10 digits). */
export function sequenceOf(name: string): number {
  const m = /(\d{10})$/.exec(name);
  return m ? Number(m[1]) : Number.NaN;
}
