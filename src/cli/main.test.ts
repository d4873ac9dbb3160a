import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedFile } from '../../test/helpers/paths.ts';
import { SqliteStore } from '../store/store.ts';
import { main } from './main.ts';

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('radnode CLI', () => {
  it('exits 2 with a named reason on bad usage and bad configuration', async () => {
    expect((await run(['bogus'])).code).toBe(2);
    expect((await run(['serve', '--nope'])).code).toBe(2);
    expect((await run(['jobs', 'retry', 'x'])).err).toContain('needs a job id');
    const cfg = join(mkdtempSync(join(tmpdir(), 'rn-cli-')), 'bad.yaml');
    writeFileSync(cfg, 'server:\n  port: 70000\n');
    const r = await run(['jobs', 'list', '--config', cfg]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('server.port');
    expect(r.err).toContain('70000');
  });

  it('lists, retries and cancels jobs on the store, with audit rows naming the CLI', async () => {
    const data = mkdtempSync(join(tmpdir(), 'rn-cli-data-'));
    const store = SqliteStore.open(join(data, 'radnode.sqlite'));
    await store.recordInstance({ sopInstanceUID: '1.2.3', sopClassUID: '1.2', seriesInstanceUID: '1.2.4', studyInstanceUID: '1.2.5', path: '/x', size: 1, sha256: 'h', source: 'stow', isOwn: false });
    const { job } = await store.upsertJob('1.2.5', 'cxr', 'k', { series: [] });
    await store.claimJob('run', 'w', 1000);
    await store.failJob(job.id, 'w', { code: 'RN_DETECTOR_FAILED', detail: 'x', retryable: false, maxAttempts: 1, backoffMs: () => 0 });
    store.close();
    const list = await run(['jobs', 'list', '--data', data, '--json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.out).jobs[0]).toMatchObject({ id: job.id, state: 'failed', reason: { code: 'RN_DETECTOR_FAILED' } });
    expect(await run(['jobs', 'retry', String(job.id), '--data', data])).toMatchObject({ code: 0, out: `job ${job.id}: queued` });
    expect(await run(['jobs', 'cancel', String(job.id), '--data', data])).toMatchObject({ code: 0, out: `job ${job.id}: cancelled` });
    expect((await run(['jobs', 'cancel', String(job.id), '--data', data])).code).toBe(1);
    const s = SqliteStore.open(join(data, 'radnode.sqlite'));
    expect((await s.listAudit('job', job.id)).filter((a) => a.actor === 'cli').map((a) => a.action)).toEqual(['job.retry', 'job.cancelled']);
    s.close();
  });

  it('inspect reports the transfer syntax and writes raw stored values; a non-DICOM file exits 1', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'rn-cli-px-')), 'px.raw');
    const r = await run(['inspect', sharedFile('dicom/pydicom/MR_small_RLE.dcm'), '--pixels', out]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ transferSyntaxUID: '1.2.840.10008.1.2.5', pixelsDecode: true });
    const { statSync } = await import('node:fs');
    expect(statSync(out).size).toBe(64 * 64 * 2);
    const bad = await run(['inspect', sharedFile('dicom/README.md')]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('RN_DICOM_MALFORMED');
  });
});
