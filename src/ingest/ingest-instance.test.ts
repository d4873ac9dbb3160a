/** Ingest of an instance larger than Node can hold in one buffer (a breast tomosynthesis stack, a whole-slide image). */
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedFile } from '../../test/helpers/paths.ts';
import { readHeader } from '../dicom/index.ts';
import { silentLogger } from '../log.ts';
import { SqliteStore } from '../store/store.ts';
import { ingestFile } from './ingest-instance.ts';

describe('ingestFile', () => {
  it('stores an instance over 2 GiB: its header read from the head, its hash from a stream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rn-big-'));
    const small = readFileSync(sharedFile('dicom/pydicom/MR_small.dcm'));
    expect(readHeader(small).transferSyntaxUID).toBe('1.2.840.10008.1.2.1');
    // The header of a real file, then a Pixel Data element of 2.2 GB whose zeros the file system keeps sparse.
    const at = small.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]), 132);
    const length = 2_200_000_000;
    const element = Buffer.alloc(12);
    element.writeUInt32LE(0x00107fe0, 0);
    element.write('OW', 4, 'latin1');
    element.writeUInt32LE(length, 8);
    const path = join(dir, 'big.part');
    const fd = openSync(path, 'w');
    writeSync(fd, small.subarray(0, at));
    writeSync(fd, element);
    ftruncateSync(fd, at + 12 + length);
    closeSync(fd);
    const size = statSync(path).size;
    expect(size).toBeGreaterThan(2 ** 31);
    const store = SqliteStore.open(':memory:');
    const out = await ingestFile({ store, dataDir: join(dir, 'data'), minFreeMb: 0, node: { uidRoot: '1.2.826.0.1.3680043.10.1496', manufacturer: 'radnode' }, log: silentLogger }, { tempPath: path }, { source: 'dimse' });
    expect(out.status).toBe('stored');
    const row = store.db.prepare('SELECT size, sha256, path FROM instances WHERE sop_instance_uid = ?').get(out.sopInstanceUID) as { size: number; sha256: string; path: string };
    expect(row.size).toBe(size);
    expect(row.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(row.path).size).toBe(size);
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});
