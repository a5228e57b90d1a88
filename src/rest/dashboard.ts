/**
 * The web dashboard: static files in `src/rest/dashboard/` (index.html, app.js, app.css), read once
 * from the package root (tsc emits only .ts, so they are not copied to dist/) and served by every
 * replica with a strict Content-Security-Policy: no inline script or style, same-origin only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../util/package-root';

/** Sent on every dashboard response: everything from this origin, nothing inline, no framing. */
export const DASHBOARD_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

export interface DashboardAsset { type: string; body: Buffer }

/** URL path → file under src/rest/dashboard/ and its content type. */
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

/** The URL paths the dashboard is served at; a browser loads them without the REST token. */
export const DASHBOARD_PATHS: readonly string[] = Object.keys(ASSETS);

const cache = new Map<string, DashboardAsset>();

/**
 * The asset served at `urlPath` (one of DASHBOARD_PATHS), read from disk on first use.
 * @throws Error naming the missing file when the package was installed without src/rest/dashboard/.
 */
export function dashboardAsset(urlPath: string): DashboardAsset {
  const cached = cache.get(urlPath);
  if (cached) return cached;
  const spec = ASSETS[urlPath];
  if (!spec) throw new Error(`no dashboard asset at ${urlPath}`);
  const file = path.join(packageRoot(), 'src', 'rest', 'dashboard', spec.file);
  const asset = { type: spec.type, body: fs.readFileSync(file) };
  cache.set(urlPath, asset);
  return asset;
}
