/**
 * The shipped Orthanc example (deploy/orthanc/orthanc.json + radnode-forward.lua) is checked as a file and then run
 * in a real Orthanc (/usr/sbin/Orthanc, Debian 1.10.1 + DICOMweb 1.7): a config Orthanc refuses in part (the DICOMweb
 * plugin silently drops a whole Servers section it cannot parse) or a Lua script that does not load would otherwise
 * only show up at a site. The copy differs from the shipped file only in ports and paths (and, for the push test,
 * StableAge), and everything listens on 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/config/defaults.ts';
import { freePort, ORTHANC_BIN, waitFor } from './helpers/orthanc.ts';
import { REPO_ROOT, sharedFile } from './helpers/paths.ts';

const DEPLOY = join(REPO_ROOT, 'deploy/orthanc');
const CONFIG_PATH = join(DEPLOY, 'orthanc.json');
const LUA_PATH = join(DEPLOY, 'radnode-forward.lua');

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObj = { [k: string]: Json };
const isObj = (v: Json | undefined): v is JsonObj => typeof v === 'object' && v !== null && !Array.isArray(v);
function obj(v: Json | undefined, what: string): JsonObj {
  if (!isObj(v)) throw new Error(`${what} is not a JSON object`);
  return v;
}

const shipped = (): JsonObj => obj(JSON.parse(readFileSync(CONFIG_PATH, 'utf8')) as Json, 'orthanc.json');

// The shipped config reads these through Orthanc's ${NAME} substitution; the test plays the site's environment.
const SECRETS = { RADNODE_ORTHANC_PASSWORD: 'radnode-in-orthanc-1', RADNODE_PUSH_PASSWORD: 'orthanc-to-radnode-2' };
const basic = (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
const RADNODE_AUTH = basic('radnode', SECRETS.RADNODE_ORTHANC_PASSWORD);

describe('deploy/orthanc/orthanc.json as a file', () => {
  const cfg = shipped();
  const dicomWeb = obj(cfg.DicomWeb, 'DicomWeb');
  const servers = obj(dicomWeb.Servers, 'DicomWeb.Servers');

  it('loads the shipped Lua script, which exists beside it', () => {
    expect(cfg.LuaScripts).toEqual(['radnode-forward.lua']);
    expect(existsSync(LUA_PATH)).toBe(true);
  });

  it('names the DICOMweb plugin explicitly and enables it', () => {
    expect(cfg.Plugins).toContain('/usr/share/orthanc/plugins/libOrthancDicomWeb.so');
    expect(dicomWeb.Enable).toBe(true);
  });

  it('has a radnode DICOMweb server with credentials and ChunkedTransfers true, and only server entries in Servers', () => {
    const radnode = obj(servers.radnode, 'DicomWeb.Servers.radnode');
    expect(radnode.Url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/dicom-web\/$/);
    expect(radnode.Username).toEqual(expect.any(String));
    expect(radnode.Password).toEqual(expect.any(String));
    // A whole-study sender must send one request per study (configuration.md, "Whole-study senders").
    expect(radnode.ChunkedTransfers).toBe(true);
    // The plugin reads every key of Servers as a server: a note there makes it drop the whole section.
    for (const [name, entry] of Object.entries(servers)) expect(isObj(entry) && typeof entry.Url === 'string', name).toBe(true);
  });

  it('agrees with the Lua script and radnode defaults: server name, manufacturer, no secrets in the file', () => {
    const lua = readFileSync(LUA_PATH, 'utf8');
    expect(lua).toContain(`local RADNODE_SERVER = 'radnode'`);
    expect(lua).toContain(`local RADNODE_MANUFACTURER = '${DEFAULT_CONFIG.node.manufacturer}'`);
    expect(obj(servers.radnode, 'radnode').Password).toMatch(/^\$\{[A-Z_]+\}$/);
    for (const pw of Object.values(obj(cfg.RegisteredUsers, 'RegisteredUsers'))) expect(pw).toMatch(/^\$\{[A-Z_]+\}$/);
  });
});

// ---- running it ----
const started: { proc: ChildProcess; exited: Promise<void> }[] = [];
const dirs: string[] = [];
const servers: Server[] = [];
afterAll(async () => {
  for (const s of started) {
    s.proc.kill('SIGTERM');
    const timer = setTimeout(() => s.proc.kill('SIGKILL'), 10_000);
    await s.exited;
    clearTimeout(timer);
  }
  for (const s of servers) s.close();
  if (!process.env.RADNODE_KEEP_ORTHANC) for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
// A test runner killed by a signal skips afterAll: an Orthanc must still not outlive it.
process.once('exit', () => {
  for (const s of started) s.proc.kill('SIGKILL');
});

type Running = { url: string; dir: string; log: () => string };

/** Starts Orthanc on a temp copy of the shipped config and Lua; `adapt` changes ports and paths only (plus what a test names). */
async function startShipped(adapt: (cfg: JsonObj, port: number) => void): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'radnode-deploy-orthanc-'));
  dirs.push(dir);
  const port = await freePort();
  const cfg = shipped();
  cfg.HttpPort = port;
  // Relative paths resolve against the config's folder (orthanc.md): storage stays in the temp folder.
  cfg.StorageDirectory = 'storage';
  cfg.IndexDirectory = 'storage';
  // No DICOM port at all, and Orthanc (which binds 0.0.0.0 in 1.10) answers loopback clients only.
  cfg.DicomServerEnabled = false;
  cfg.RemoteAccessAllowed = false;
  adapt(cfg, port);
  writeFileSync(join(dir, 'orthanc.json'), JSON.stringify(cfg, null, 2));
  copyFileSync(LUA_PATH, join(dir, 'radnode-forward.lua'));
  const logFile = join(dir, 'orthanc.log');
  const proc = spawn(ORTHANC_BIN, [`--logfile=${logFile}`, join(dir, 'orthanc.json')], { cwd: dir, stdio: 'ignore', env: { ...process.env, ...SECRETS } });
  let gone = false;
  const exited = new Promise<void>((res) => {
    proc.once('exit', () => {
      gone = true;
      res();
    });
    proc.once('error', () => res());
  });
  started.push({ proc, exited });
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    'Orthanc GET /system',
    async () => {
      // Orthanc refuses a broken Lua script by exiting during start-up: report its log rather than a timeout.
      if (gone) throw new Error(`Orthanc exited during start-up:\n${log()}`);
      const r = await fetch(`${url}/system`, { headers: { Authorization: RADNODE_AUTH } }).catch(() => null);
      if (r === null) return false;
      await r.arrayBuffer();
      return r.ok;
    },
    30_000,
  );
  return { url, dir, log };
}

const errorLines = (log: string) => log.split('\n').filter((l) => /^E\d{4}/.test(l) || /Lua.*(error|Cannot execute)/i.test(l));

describe('the shipped config in a real Orthanc', () => {
  it('starts with the shipped Lua script, lists dicom-web and the radnode server, and requires credentials', async () => {
    const orthanc = await startShipped(() => undefined);
    const get = async (path: string, auth: string | null = RADNODE_AUTH) => {
      const r = await fetch(orthanc.url + path, { headers: auth ? { Authorization: auth } : {} });
      return { status: r.status, body: r.ok ? ((await r.json()) as Json) : await r.text() };
    };
    expect((await get('/plugins')).body).toContain('dicom-web');
    expect((await get('/dicom-web/servers')).body).toEqual(['radnode']);
    // AuthenticationEnabled with the password from ${RADNODE_ORTHANC_PASSWORD}: no or wrong credentials are refused.
    expect((await get('/plugins', null)).status).toBe(401);
    expect((await get('/plugins', basic('radnode', 'wrong'))).status).toBe(401);
    const log = orthanc.log();
    expect(log).toContain('Lua toolbox installed');
    expect(errorLines(log)).toEqual([]);
  });

  it('pushes a stable study to radnode by one chunked STOW-RS with the pushing account (StableAge shortened to 1 s)', async () => {
    const requests: { method?: string; url?: string; headers: IncomingMessage['headers']; bytes: number }[] = [];
    // Plays radnode's STOW-RS endpoint: records the request and answers as radnode would for one instance.
    const fake = createServer((req, res) => {
      let bytes = 0;
      req.on('data', (d: Buffer) => (bytes += d.length));
      req.on('end', () => {
        requests.push({ method: req.method, url: req.url, headers: req.headers, bytes });
        res.writeHead(200, { 'Content-Type': 'application/dicom+json' });
        res.end(JSON.stringify({ '00081199': { vr: 'SQ', Value: [{}] } }));
      });
    });
    servers.push(fake);
    const fakePort = await new Promise<number>((res) => fake.listen(0, '127.0.0.1', () => res((fake.address() as { port: number }).port)));

    const orthanc = await startShipped((cfg) => {
      cfg.StableAge = 1;
      const radnode = obj(obj(obj(cfg.DicomWeb, 'DicomWeb').Servers, 'Servers').radnode, 'radnode');
      radnode.Url = `http://127.0.0.1:${fakePort}/dicom-web/`;
    });
    const up = await fetch(`${orthanc.url}/instances`, { method: 'POST', headers: { Authorization: RADNODE_AUTH }, body: readFileSync(sharedFile('dicom/pydicom/MR_small.dcm')) });
    expect(up.status).toBe(200);
    await up.arrayBuffer();

    const req = await waitFor('the STOW-RS from Orthanc', async () => requests[0], 20_000);
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/dicom-web/studies');
    expect(req.headers.authorization).toBe(basic('orthanc', SECRETS.RADNODE_PUSH_PASSWORD));
    expect(req.headers['transfer-encoding']).toBe('chunked');
    expect(req.headers['content-type']).toMatch(/^multipart\/related; type="application\/dicom"/);
    expect(req.bytes).toBeGreaterThan(1000);
    expect(errorLines(orthanc.log())).toEqual([]);
  });
});
