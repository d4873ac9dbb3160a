import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { freePort, waitFor } from './orthanc.ts';
import { REPO_ROOT } from './paths.ts';

export const TEST_DETECTOR_MODULE = resolve(REPO_ROOT, 'test/fixtures/test-detector.ts');

export type RadnodeHandle = {
  url: string;
  port: number;
  dir: string;
  configPath: string;
  /** Starts (again) on the same port, data and config; env adds to the process environment for this run only. */
  start(env?: Record<string, string>): Promise<void>;
  /** The running process's pid (benchmarks read its peak RSS). */
  pid(): number | undefined;
  /** Resolves when the process has exited (after a crash point or a kill). */
  exited(): Promise<number | null>;
  kill9(): Promise<void>;
  stop(): Promise<void>;
  log(): string;
  api<T = unknown>(path: string, init?: RequestInit): Promise<T>;
};

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/**
 * radnode as a real child process (`bin/radnode.js serve`), so that kill -9 is a real kill -9. The config is a
 * YAML file beside its data folder, as a site would write it.
 */
export async function startRadnode(
  config: Record<string, unknown>,
  opts: { dir?: string; env?: Record<string, string>; start?: boolean; /** Authorization header for api() */ authorization?: string } = {},
): Promise<RadnodeHandle> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'radnode-it-'));
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const configPath = join(dir, 'radnode.yaml');
  const full = {
    ...config,
    server: { port, ...(config.server as object) },
    data: { dir: join(dir, 'data'), minFreeMb: 0, ...(config.data as object) },
    logging: { level: 'debug', ...(config.logging as object) },
  };
  writeFileSync(configPath, stringify(full));
  const logPath = join(dir, 'radnode.log');
  let child: ChildProcess | null = null;
  let exit: Promise<number | null> = Promise.resolve(null);
  const url = `http://127.0.0.1:${port}`;

  const handle: RadnodeHandle = {
    url, port, dir, configPath,
    async start(env = {}) {
      const fd = openSync(logPath, 'a');
      child = spawn(process.execPath, [join(REPO_ROOT, 'bin/radnode.js'), 'serve', '--config', configPath], {
        cwd: REPO_ROOT, stdio: ['ignore', fd, fd], env: { ...process.env, ...opts.env, ...env },
      });
      closeSync(fd);
      children.add(child);
      const c = child;
      exit = new Promise((r) => c.once('exit', (code) => (children.delete(c), r(code))));
      await waitFor('radnode /healthz', async () => {
        if (c.exitCode !== null || c.signalCode !== null) throw new Error(`radnode exited during start-up:\n${handle.log()}`);
        try {
          return (await fetch(`${url}/healthz`)).ok;
        } catch {
          return false;
        }
      }, 30_000, 100);
    },
    exited: () => exit,
    pid: () => child?.pid,
    async kill9() {
      child?.kill('SIGKILL');
      await exit;
    },
    async stop() {
      child?.kill('SIGTERM');
      await exit;
    },
    log: () => {
      try {
        return readFileSync(logPath, 'utf8');
      } catch {
        return '';
      }
    },
    async api<T>(path: string, init?: RequestInit) {
      const headers = new Headers(init?.headers);
      if (opts.authorization) headers.set('authorization', opts.authorization);
      const r = await fetch(url + path, { ...init, headers });
      if (!r.ok) throw new Error(`${init?.method ?? 'GET'} ${path}: ${r.status} ${await r.text()}`);
      return (await r.json()) as T;
    },
  };
  if (opts.start !== false) await handle.start();
  return handle;
}

export type ApiJob = { id: number; study: string; detector: string; state: string; attempts: number; reason: { code: string; detail: string } | null; srInstanceNumber: number; predecessorJobId: number | null; supersededBy: number | null };

export const jobsOf = async (rn: RadnodeHandle, study?: string) =>
  (await rn.api<{ jobs: ApiJob[] }>(`/api/jobs${study ? `?study=${study}` : ''}`)).jobs;
