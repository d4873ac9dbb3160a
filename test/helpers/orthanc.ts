/**
 * A real Orthanc (Debian 1.10.1 + DICOMweb 1.7 + GDCM) for integration tests, one process per call, on a free port,
 * with its own config, storage and log under one folder (../shared/notes/orthanc.md "Running Orthanc as a normal user
 * process"). Every process started here is killed when the test process ends, even when it ends by a signal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ORTHANC_BIN = '/usr/sbin/Orthanc';
const PLUGINS = ['/usr/share/orthanc/plugins/libOrthancDicomWeb.so', '/usr/share/orthanc/plugins/libOrthancGdcm.so'];

export type OrthancOptions = {
  /** Storage folder to reuse (a restart of "the same" PACS); a fresh temp folder when absent. */
  dir?: string;
  /** Orthanc's StableAge in seconds (default 2: tests wait for StableStudy). */
  stableAgeSec?: number;
  /** Lua script text, loaded as LuaScripts. */
  lua?: string;
  /** DicomWeb.Servers: a URL, or [url, username, password]. Only loopback URLs are accepted. */
  servers?: Record<string, string | [string, string, string]>;
  overwriteInstances?: boolean;
  /** Turns on HTTP Basic authentication with this one user; the handle's own requests use it. */
  auth?: { username: string; password: string };
  /**
   * Turns on Orthanc's DICOM server (issue 11) on 127.0.0.1-reachable `port` as `aeTitle`, with these modalities
   * (name -> [AE, host, port], loopback only). Absent: no DICOM port, as before.
   */
  dicom?: { aeTitle: string; port: number; modalities: Record<string, [string, string, number]> };
};

export type OrthancHandle = {
  /** http://127.0.0.1:PORT */
  url: string;
  /** url + '/dicom-web' */
  dicomWebUrl: string;
  port: number;
  dir: string;
  /** SIGTERM, then wait for the process to exit. */
  stop(): Promise<void>;
  /** SIGKILL, then wait for the process to exit. */
  kill9(): Promise<void>;
  /** Stops it if running, then starts it again on the same port with the same storage. */
  restart(): Promise<void>;
  /** POST /instances; returns the Orthanc instance id. */
  upload(pathOrBytes: string | Uint8Array): Promise<string>;
  /** StudyInstanceUIDs held. */
  studies(): Promise<string[]>;
  instancesOfStudy(studyUID: string): Promise<{ sopInstanceUID: string; seriesInstanceUID: string; modality?: string }[]>;
  /** Orthanc id of a DICOM UID (any level), or null. */
  lookup(uid: string): Promise<string | null>;
  /** Every log file of this handle's runs, concatenated, for diagnosis. */
  log(): string;
};

// ---- cleanup of every process started by this module ----
const running = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL leaves no child behind and no shutdown to wait for.
  process.once('exit', () => {
    for (const child of running) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    if (!process.env.RADNODE_KEEP_ORTHANC) for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
}

/**
 * The 'exit' hook does not run when the test runner itself dies by a signal. A tiny shell holds the read end of a pipe
 * from this process: when this process dies the pipe reaches EOF and the shell SIGKILLs Orthanc, so no Orthanc outlives
 * the tests. It is killed first on a normal stop so that it can never signal a reused pid.
 */
function startWatchdog(pid: number): ChildProcess {
  const dog = spawn('sh', ['-c', 'read _line; kill -9 "$1" 2>/dev/null', 'sh', String(pid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  dog.unref();
  (dog.stdin as unknown as Socket | null)?.unref();
  dog.on('error', () => undefined);
  return dog;
}

/**
 * Temp folders are removed by a janitor shell when this process ends, however it ends: vitest's workers are torn down
 * without running 'exit' handlers, and a folder must outlive stop() because restart() reuses it.
 */
let janitor: ChildProcess | null = null;
function removeAtExit(dir: string): void {
  tempDirs.add(dir);
  if (process.env.RADNODE_KEEP_ORTHANC) return;
  if (janitor === null) {
    janitor = spawn('sh', ['-c', 'set --; while IFS= read -r d; do set -- "$@" "$d"; done; sleep 1; rm -rf -- "$@"'], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    janitor.unref();
    janitor.on('error', () => undefined);
    (janitor.stdin as unknown as Socket | null)?.unref();
  }
  janitor.stdin?.write(dir + '\n');
}

/** Binds port 0 on loopback to let the kernel pick a free port, then releases it for Orthanc. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('no port from listen(0)'));
        return;
      }
      const port = addr.port;
      srv.close(() => resolvePort(port));
    });
  });
}

function assertLoopbackUrl(name: string, url: string): void {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]') {
    throw new Error(`DicomWeb server ${name} must point at loopback, got ${url}`);
  }
}

function buildConfig(port: number, opts: OrthancOptions): Record<string, unknown> {
  const servers: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(opts.servers ?? {})) {
    const url = typeof entry === 'string' ? entry : entry[0];
    assertLoopbackUrl(name, url);
    servers[name] = typeof entry === 'string' ? { Url: entry } : entry;
  }
  return {
    Name: 'radnode-test',
    // Relative paths resolve against the config file's folder (orthanc.md), so the folder is self-contained.
    StorageDirectory: 'storage',
    IndexDirectory: 'storage',
    HttpPort: port,
    // Orthanc 1.10 has no bind address: it listens on 0.0.0.0. RemoteAccessAllowed false refuses every non-loopback
    // client, and with no DICOM server, no modalities and no peers it never opens or dials anything else.
    RemoteAccessAllowed: false,
    AuthenticationEnabled: opts.auth !== undefined,
    RegisteredUsers: opts.auth ? { [opts.auth.username]: opts.auth.password } : {},
    DicomServerEnabled: opts.dicom !== undefined,
    ...(opts.dicom ? { DicomAet: opts.dicom.aeTitle, DicomPort: opts.dicom.port, DicomCheckCalledAet: true, DicomAlwaysAllowFind: true, DicomAlwaysAllowMove: true } : {}),
    DicomModalities: Object.fromEntries(Object.entries(opts.dicom?.modalities ?? {}).map(([name, m]) => {
      if (!['127.0.0.1', 'localhost'].includes(m[1])) throw new Error(`modality ${name}: loopback hosts only (${m[1]})`);
      return [name, m];
    })),
    OrthancPeers: {},
    WebDavEnabled: false,
    HttpCompressionEnabled: false,
    // Named explicitly: the Debian default loads every plugin in the folder (worklists, serve-folders).
    Plugins: PLUGINS,
    StableAge: opts.stableAgeSec ?? 2,
    LuaScripts: opts.lua !== undefined ? ['script.lua'] : [],
    OverwriteInstances: opts.overwriteInstances ?? false,
    SaveJobs: false,
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: true, WadoRoot: '/wado', Servers: servers },
  };
}

export async function startOrthanc(opts: OrthancOptions = {}): Promise<OrthancHandle> {
  installExitHook();
  let dir: string;
  if (opts.dir !== undefined) {
    dir = opts.dir;
    mkdirSync(dir, { recursive: true });
  } else {
    dir = mkdtempSync(join(tmpdir(), 'radnode-orthanc-'));
    removeAtExit(dir);
  }
  // Reusing a folder means reusing its port too, so that a "restart" in a new handle is the same PACS to clients.
  const portFile = join(dir, 'port');
  const port = existsSync(portFile) ? Number(readFileSync(portFile, 'utf8')) : await freePort();
  writeFileSync(portFile, String(port));
  const configPath = join(dir, 'orthanc.json');
  writeFileSync(configPath, JSON.stringify(buildConfig(port, opts), null, 2));
  if (opts.lua !== undefined) writeFileSync(join(dir, 'script.lua'), opts.lua);

  const url = `http://127.0.0.1:${port}`;
  const authHeader: Record<string, string> = opts.auth
    ? { Authorization: 'Basic ' + Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64') }
    : {};

  let child: ChildProcess | null = null;
  let watchdog: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let runNo = 0;
  let stderrTail = '';

  const logFiles = (): string[] =>
    readdirSync(dir)
      .filter((f) => /^orthanc-\d+\.log$/.test(f))
      .sort((a, b) => Number(a.slice(8, -4)) - Number(b.slice(8, -4)))
      .map((f) => join(dir, f));
  const log = (): string => logFiles().map((f) => `==> ${f}\n${readFileSync(f, 'utf8')}`).join('\n') + (stderrTail ? `\n==> stderr\n${stderrTail}` : '');

  const launch = async (): Promise<void> => {
    runNo = logFiles().length + 1;
    const logFile = join(dir, `orthanc-${runNo}.log`);
    const proc = spawn(ORTHANC_BIN, [`--logfile=${logFile}`, configPath], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    running.add(proc);
    stderrTail = '';
    proc.stderr?.on('data', (d: Buffer) => {
      stderrTail = (stderrTail + d.toString()).slice(-4000);
    });
    let exitedEarly = false;
    exited = new Promise<void>((res) => {
      proc.once('exit', () => {
        exitedEarly = true;
        running.delete(proc);
        watchdog?.kill('SIGKILL');
        watchdog = null;
        if (child === proc) child = null;
        res();
      });
      proc.once('error', () => res());
    });
    if (proc.pid !== undefined) watchdog = startWatchdog(proc.pid);

    // Readiness: GET /system answers once the plugins are loaded and the HTTP server is up (orthanc.md).
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exitedEarly) throw new Error(`Orthanc exited during start-up\n${log()}`);
      try {
        const r = await fetch(`${url}/system`, { headers: authHeader, signal: AbortSignal.timeout(2000) });
        if (r.ok) {
          const body = (await r.json()) as { Version?: string };
          if (typeof body.Version === 'string') return;
        } else await r.arrayBuffer();
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`Orthanc did not answer GET /system within 30 s\n${log()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (proc === null) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };

  const rest = async (path: string, init: { method?: string; body?: string | Uint8Array } = {}): Promise<unknown> => {
    const r = await fetch(url + path, { method: init.method ?? 'GET', headers: authHeader, body: init.body });
    const text = await r.text();
    if (!r.ok) throw new Error(`Orthanc ${init.method ?? 'GET'} ${path} -> ${r.status}: ${text.slice(0, 300)}`);
    return text.length > 0 ? JSON.parse(text) : null;
  };

  const lookup = async (uid: string): Promise<string | null> => {
    const hits = (await rest('/tools/lookup', { method: 'POST', body: uid })) as { ID: string }[];
    return hits.length > 0 ? hits[0].ID : null;
  };

  await launch();

  return {
    url,
    dicomWebUrl: `${url}/dicom-web`,
    port,
    dir,
    stop: () => stopWith('SIGTERM'),
    kill9: () => stopWith('SIGKILL'),
    restart: async () => {
      await stopWith('SIGTERM');
      await launch();
    },
    upload: async (pathOrBytes) => {
      const bytes = typeof pathOrBytes === 'string' ? await readFile(pathOrBytes) : pathOrBytes;
      const res = (await rest('/instances', { method: 'POST', body: bytes })) as { ID: string };
      return res.ID;
    },
    studies: async () => {
      const list = (await rest('/studies?expand')) as { MainDicomTags: { StudyInstanceUID: string } }[];
      return list.map((s) => s.MainDicomTags.StudyInstanceUID);
    },
    instancesOfStudy: async (studyUID) => {
      const id = await lookup(studyUID);
      if (id === null) return [];
      type Series = { ID: string; MainDicomTags: { SeriesInstanceUID: string; Modality?: string } };
      type Instance = { MainDicomTags: { SOPInstanceUID: string } };
      const out: { sopInstanceUID: string; seriesInstanceUID: string; modality?: string }[] = [];
      for (const s of (await rest(`/studies/${id}/series`)) as Series[]) {
        for (const i of (await rest(`/series/${s.ID}/instances`)) as Instance[]) {
          out.push({
            sopInstanceUID: i.MainDicomTags.SOPInstanceUID,
            seriesInstanceUID: s.MainDicomTags.SeriesInstanceUID,
            ...(s.MainDicomTags.Modality !== undefined ? { modality: s.MainDicomTags.Modality } : {}),
          });
        }
      }
      return out;
    },
    lookup,
    log,
  };
}

// ---- making test studies from real files ----

/** A fresh UID under 2.25 (PS3.5 B.2: a UUID as a decimal integer). */
export function newUid(): string {
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  return `2.25.${BigInt('0x' + hex).toString()}`;
}

export type InstanceEdits = {
  studyUID: string;
  seriesUID?: string;
  sopUID?: string;
  patientId?: string;
  /** DA, e.g. today's date so that a QIDO poll's window holds the study. */
  studyDate?: string;
  modality?: string;
  instanceNumber?: number;
  /** ContentDate/ContentTime, the delivery fingerprint. */
  contentDate?: string;
  contentTime?: string;
};

/**
 * Copies a real DICOM file into `dir` and re-identifies it with dcmodify (orthanc.md "Making a study from one file").
 * `-i` inserts or replaces, so it works whether the source has the tag or not; the meta header's SOP Instance UID
 * follows the data set's (dcmodify's default).
 */
export async function makeInstance(src: string, dir: string, edits: InstanceEdits): Promise<{ path: string; sopInstanceUID: string; seriesInstanceUID: string; bytes: Uint8Array }> {
  const sopUID = edits.sopUID ?? newUid();
  const seriesUID = edits.seriesUID ?? newUid();
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${sopUID}.dcm`);
  writeFileSync(path, readFileSync(src));
  const set: [string, string | undefined][] = [
    ['0020,000d', edits.studyUID],
    ['0020,000e', seriesUID],
    ['0008,0018', sopUID],
    ['0010,0020', edits.patientId],
    ['0008,0020', edits.studyDate],
    ['0008,0060', edits.modality],
    ['0020,0013', edits.instanceNumber === undefined ? undefined : String(edits.instanceNumber)],
    ['0008,0023', edits.contentDate],
    ['0008,0033', edits.contentTime],
  ];
  const args = ['-nb'];
  for (const [tag, value] of set) if (value !== undefined) args.push('-i', `(${tag})=${value}`);
  args.push(path);
  await new Promise<void>((res, rej) => {
    const p = spawn('dcmodify', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', rej);
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`dcmodify ${args.join(' ')} failed (${code}): ${err}`))));
  });
  return { path, sopInstanceUID: sopUID, seriesInstanceUID: seriesUID, bytes: readFileSync(path) };
}

/** Waits for a condition, polling, up to a deadline: tests wait on conditions, not fixed sleeps. */
export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
