/** The viewer proxy's allow-list (DESIGN §6): read routes OHIF needs pass, anything else is refused with 403/405. */
import { describe, expect, it } from 'vitest';
import { decideProxy } from './routes.ts';

const S = '1.2.840.113619.2.55.3';
describe('decideProxy', () => {
  it('forwards QIDO, metadata, frames, rendered, thumbnails and Orthanc bulk data', () => {
    for (const p of ['/studies', '/series', `/studies/${S}/series`, `/studies/${S}/series/1.2/instances`, `/studies/${S}/metadata`, `/studies/${S}/series/1.2/metadata`,
      `/studies/${S}/series/1.2/instances/1.3/frames/1`, `/studies/${S}/series/1.2/instances/1.3/frames/1,2,3`, `/studies/${S}/series/1.2/instances/1.3/rendered`,
      `/studies/${S}/series/1.2/thumbnail`, `/studies/${S}/series/1.2/instances/1.3/bulk/7fe00010`, `/studies/${S}/series/1.2/instances/1.3/bulk/00400275/1/0020000d`])
      expect(decideProxy('GET', p), p).toEqual({ forward: true, subPath: p });
    expect(decideProxy('HEAD', '/studies').forward).toBe(true);
  });
  it('refuses writes with 405 and other paths with 403', () => {
    for (const m of ['POST', 'PUT', 'DELETE', 'OPTIONS']) expect(decideProxy(m, '/studies')).toMatchObject({ forward: false, status: 405 });
    for (const p of ['/studies/../system', '/studies/1.2%2F3', '/studies/%2e%2e', '/studies/1.2\\3', '//studies', '/studies/', '/studies/./1.2', '/system', '/tools/find',
      '/studies/a.b/series', `/studies/${S}/series/1.2/instances/1.3/bulk/../../x`, `/studies/${S}/series/1.2/instances/1.3/frames/a`, '/servers/radnode/stow'])
      expect(decideProxy('GET', p), p).toMatchObject({ forward: false, status: 403 });
  });
});
