/**
 * The detector round trips' common stack: a real radnode delivering to a real Orthanc that pushes stable studies to
 * it with the shipped Lua (deploy/orthanc/radnode-forward.lua) as a whole-study sender. radnode starts after Orthanc,
 * because each needs the other's address.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { startOrthanc, type OrthancHandle } from './orthanc.ts';
import { REPO_ROOT } from './paths.ts';
import { startRadnode, type RadnodeHandle } from './radnode.ts';

export const PUSH = { username: 'orthanc-push', password: 'push-secret-123' };
export const OPERATOR = { username: 'op', password: 'op-secret-456' };
export const basic = (u: { username: string; password: string }) => 'Basic ' + Buffer.from(`${u.username}:${u.password}`).toString('base64');

export type PushStack = { rn: RadnodeHandle; orthanc: OrthancHandle; stop(): Promise<void> };

export async function startPushStack(opts: { stableAgeSec: number; modelsDir?: string }): Promise<PushStack> {
  const rn = await startRadnode(
    {
      server: { host: '127.0.0.1', users: [{ ...PUSH, roles: ['ingest'] }, { ...OPERATOR, roles: ['reader', 'operator'] }] },
      workflow: { quietSeconds: 30, tickMs: 100, wholeStudySenders: [PUSH.username] },
      delivery: { mode: 'pacs', confirmTimeoutMs: 10_000 },
      ...(opts.modelsDir ? { inference: { modelsDir: opts.modelsDir } } : {}),
    },
    { start: false, authorization: basic(OPERATOR) },
  );
  const orthanc = await startOrthanc({
    stableAgeSec: opts.stableAgeSec,
    lua: readFileSync(resolve(REPO_ROOT, 'deploy/orthanc/radnode-forward.lua'), 'utf8'),
    servers: { radnode: [`${rn.url}/dicom-web/`, PUSH.username, PUSH.password] },
  });
  const cfg = parse(readFileSync(rn.configPath, 'utf8'));
  cfg.pacs = { kind: 'orthanc', url: orthanc.dicomWebUrl };
  writeFileSync(rn.configPath, stringify(cfg));
  await rn.start();
  return {
    rn,
    orthanc,
    async stop() {
      await rn.stop();
      await orthanc.stop();
    },
  };
}
