/**
 * Issue 8 benchmark: for the CT study (LIDC-IDRI-0001 with radnode's SR and heatmap delivered into Orthanc), the
 * time from opening the viewer URL in headless Chromium to the first image, and to the SR's measurement displayed
 * (SR thumbnail opened, its overlay drawn). radnode's built-in viewer (static OHIF + read-only proxy with auth on
 * both sides) against the reference of shared/notes/viewer.md: the same OHIF build from a plain Node static server
 * with a pass-through proxy straight to the same Orthanc, measured in the same run. Each open uses a fresh browser
 * profile (a cold cache, as a first open); browser start-up is not counted.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { ohifAppConfig } from '../src/api/viewer/app-config.ts';
import { freePort } from '../test/helpers/orthanc.ts';
import {
  CT_STUDY_UID, OHIF_DIR, ORTHANC_ADMIN, READER, basic, ctFiles, launchBrowser, startViewerStack, uploadAll, waitDelivered, waitFirstImage,
} from '../test/fixtures/viewer-harness.ts';
import type { BenchRow } from './row.ts';

const RUNS = Number(process.env.RADNODE_BENCH_VIEWER_RUNS ?? 3);
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json', '.html': 'text/html', '.svg': 'image/svg+xml', '.png': 'image/png', '.woff2': 'font/woff2' };

/** The viewer.md reference: ~40 lines, no allow-list, no auth of its own, Host kept, Orthanc's credential added. */
async function plainServer(orthancPort: number): Promise<{ url: string; close(): Promise<void> }> {
  const config = ohifAppConfig({ friendlyName: 'reference' });
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const iso = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp', 'cross-origin-resource-policy': 'same-origin' };
    if (path.startsWith('/dicom-web/')) {
      const preq = request({ host: '127.0.0.1', port: orthancPort, method: req.method, path: req.url, headers: { ...req.headers, authorization: basic(ORTHANC_ADMIN) } }, (pres) => {
        res.writeHead(pres.statusCode ?? 502, { ...pres.headers, ...iso });
        pres.pipe(res);
      });
      req.pipe(preq);
      return;
    }
    if (path === '/app-config.js') return res.writeHead(200, { 'content-type': 'text/javascript', ...iso }).end(config);
    let file = normalize(join(OHIF_DIR, path));
    if (!file.startsWith(OHIF_DIR) || !existsSync(file) || !statSync(file).isFile()) file = join(OHIF_DIR, 'index.html');
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size, ...iso });
    createReadStream(file).pipe(res);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections())) };
}

async function openOnce(viewerUrl: string, credentials?: { username: string; password: string }): Promise<{ firstImageMs: number; srMs: number }> {
  const b = await launchBrowser(credentials);
  try {
    const page = b.ctx.pages()[0] ?? (await b.ctx.newPage());
    const t0 = performance.now();
    await page.goto(`${viewerUrl}/viewer?StudyInstanceUIDs=${CT_STUDY_UID}`);
    await waitFirstImage(page);
    const firstImageMs = performance.now() - t0;
    await page.locator('[data-cy="study-browser-thumbnail-no-image"]').first().dblclick({ timeout: 60_000 });
    await page.waitForFunction(`[...document.querySelectorAll('[data-cy="viewport-pane"] svg text')].some((t) => /mm/.test(t.textContent || ''))`, undefined, { timeout: 60_000, polling: 100 });
    return { firstImageMs, srMs: performance.now() - t0 };
  } finally {
    await b.close();
  }
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

export async function benchViewer(): Promise<BenchRow[]> {
  if (!existsSync('/usr/bin/chromium') || !existsSync(join(OHIF_DIR, 'index.html'))) {
    process.stderr.write('bench viewer: needs /usr/bin/chromium and scripts/fetch-ohif; skipped\n');
    return [];
  }
  const stack = await startViewerStack();
  const plain = await plainServer(stack.orthanc.port);
  try {
    await uploadAll(stack.orthanc, ctFiles());
    await waitDelivered(stack, CT_STUDY_UID);
    const ours: { firstImageMs: number; srMs: number }[] = [];
    const ref: { firstImageMs: number; srMs: number }[] = [];
    // Alternate, so that machine load drifts hit both sides alike.
    for (let i = 0; i < RUNS; i++) {
      ours.push(await openOnce(stack.viewerUrl, READER));
      ref.push(await openOnce(plain.url));
    }
    const row = (name: string, k: 'firstImageMs' | 'srMs', note: string): BenchRow => {
      const a = median(ours.map((x) => x[k]));
      const r = median(ref.map((x) => x[k]));
      return { name, radnode: a, reference: r, unit: 'ms', ratio: a / r, note };
    };
    return [
      row('viewer: open → first image (CT, median)', 'firstImageMs', `${RUNS} cold opens each; reference: plain static server + pass-through proxy`),
      row('viewer: open → SR measurement shown (CT, median)', 'srMs', 'includes opening the SR thumbnail'),
    ];
  } finally {
    await plain.close();
    await stack.stop();
  }
}
