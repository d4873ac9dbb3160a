/**
 * Issue 8: proof in a real viewer. A real Orthanc holds the study, pushes it to a real radnode (shipped Lua, STOW),
 * radnode analyses it with the test-only findings detector and delivers its SR and heatmap back into Orthanc, and
 * radnode's built-in OHIF viewer (proxy to that Orthanc) is opened in headless Chromium. What is asserted is what
 * OHIF really shows (shared/notes/issue-corrections.md): the SR and the heatmap listed, the heatmap rendered, the SR
 * overlay on the right image, hydration accepted and the measurement drawn with OHIF's own recomputed size equal to
 * radnode's. Pixel counts on screenshots prove the drawing; screenshots go to .cache/artifacts/viewer/.
 * The second part checks the proxy's refusals without a browser.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { decode } from 'fast-png';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readHeader } from '../../src/dicom/index.ts';
import type { DetectorInput } from '../../src/detectors/detector.ts';
import type { Place2D, Place3D } from '../../src/results/findings.ts';
import { detector as findingsDetector, CT_PROBABILITY } from '../fixtures/findings-detector.ts';
import {
  ARTIFACTS, CHROMIUM, CT_STUDY_UID, OHIF_DIR, PUSH_USER, READER, basic, crFile, ctFiles, launchBrowser, startViewerStack, uploadAll, waitDelivered, waitFirstImage, type ViewerStack,
} from '../fixtures/viewer-harness.ts';

const ready = existsSync(CHROMIUM) && existsSync(join(OHIF_DIR, 'index.html'));
if (!ready) console.warn('viewer tests need /usr/bin/chromium and scripts/fetch-ohif (scripts/setup --test installs both)');

type Counts = { yellow: number; green: number; heat: number };
/** Pixels of OHIF's annotation colours (hydrated: yellow; SR overlay: green) and of the heatmap's jet colours. */
function countColours(png: Buffer): Counts {
  const img = decode(png);
  const ch = img.channels;
  const c: Counts = { yellow: 0, green: 0, heat: 0 };
  for (let i = 0; i < img.width * img.height; i++) {
    const r = img.data[i * ch];
    const g = img.data[i * ch + 1];
    const b = img.data[i * ch + 2];
    if (r > 200 && g > 200 && b < 90) c.yellow++;
    else if (g > 170 && r < 130 && b < 130) c.green++;
    // The hot end of the heatmap's jet colours: no OHIF UI element is red or orange.
    if (r - b > 60 && r - g > 30) c.heat++;
  }
  return c;
}

async function shot(page: Page, name: string): Promise<Counts> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}-page.png`) });
  const png = await page.locator('[data-cy="viewport-pane"]').first().screenshot({ path: join(ARTIFACTS, `${name}.png`) });
  return countColours(png);
}

const svgText = (page: Page) => page.evaluate(`[...document.querySelectorAll('[data-cy="viewport-pane"] svg text')].map((t) => t.textContent).join(' | ')`) as Promise<string>;
const overlay = (page: Page, where: string) => page.locator(`[data-cy="viewport-overlay-${where}"]`).first().innerText();
const thumb = (page: Page, modality: string) => page.locator('[data-cy^="study-browser-thumbnail"]').filter({ has: page.locator('[data-cy="series-modality-label"]', { hasText: new RegExp(`^${modality}$`) }) }).first();

/** Opens the study, checks the heatmap renders, opens the SR, accepts hydration; returns the hydrated labels. */
async function viewStudy(page: Page, viewerUrl: string, studyUID: string, name: string): Promise<{ srText: string; hydratedText: string; sliceOverlay: string; counts: Record<string, Counts> }> {
  const counts: Record<string, Counts> = {};
  await page.goto(`${viewerUrl}/viewer?StudyInstanceUIDs=${studyUID}`);
  await waitFirstImage(page);
  // OHIF's route error boundary replaces the whole viewer with this text (what a TID 1500 group without an image
  // region did in OHIF 3.13.2 before the writer moved such content to Qualitative Evaluations).
  const crashed = () => page.getByText('Something went wrong').count();
  // The SR and the heatmap are display sets of the study.
  await expect.poll(() => thumb(page, 'SR').innerText(), { timeout: 30_000 }).toContain('radnode test-findings AI report');
  await expect.poll(() => thumb(page, 'OT').innerText(), { timeout: 30_000 }).toContain('heatmap');
  // The heatmap renders: its jet colours appear in the viewport, and the source image has none of them.
  await thumb(page, 'OT').dblclick();
  await expect.poll(async () => (counts.heatmap = await shot(page, `${name}-1-heatmap`)).heat, { timeout: 30_000 }).toBeGreaterThan(200);
  const source = name === 'ct' ? 'CT' : 'CR';
  // The heatmap is numbered after its source (src/results/modules.ts seriesNumbers), so OHIF lists it after it.
  const order = await page.locator('[data-cy^="study-browser-thumbnail"] [data-cy="series-modality-label"]').allInnerTexts();
  expect(order.indexOf('OT'), `study browser order ${order.join(',')}`).toBeGreaterThan(order.indexOf(source));
  await thumb(page, source).dblclick();
  await page.waitForTimeout(1500);
  counts.image = await shot(page, `${name}-2-image`);
  expect(counts.image.heat).toBeLessThan(counts.heatmap.heat / 10);
  // The SR opens in OHIF's SR viewport, which jumps to the referenced image and offers hydration.
  await thumb(page, 'SR').dblclick();
  const yes = page.getByRole('button', { name: 'Yes' });
  await yes.waitFor({ timeout: 30_000 });
  // The SR overlay's labels, when OHIF draws them headless at all, come a moment after the prompt: give them time.
  for (const until = Date.now() + 10_000; Date.now() < until && !(await svgText(page)).includes('Certainty of Finding'); ) await page.waitForTimeout(250);
  await page.waitForTimeout(500);
  const srText = await svgText(page);
  counts.sr = await shot(page, `${name}-3-sr`);
  const sliceOverlay = await overlay(page, 'bottom-right');
  expect(await crashed(), 'OHIF error boundary after opening the SR').toBe(0);
  await yes.click();
  await expect.poll(() => svgText(page), { timeout: 30_000 }).toMatch(/mm/);
  await page.waitForTimeout(1000);
  expect(await crashed(), 'OHIF error boundary after hydration').toBe(0);
  counts.hydrated = await shot(page, `${name}-4-hydrated`);
  const hydratedText = await svgText(page);
  writeFileSync(join(ARTIFACTS, `${name}-observed.json`), JSON.stringify({ srText, hydratedText, sliceOverlay, counts }, null, 2));
  return { srText, hydratedText, sliceOverlay, counts };
}

/** What the findings detector reports for the study (it is deterministic): the expected places and sizes. */
async function expectedFindings(files: string[], modality: string) {
  const heads = files.map((path) => ({ path, h: readHeader(new Uint8Array(readFileSync(path))) }));
  const input: DetectorInput = {
    studyInstanceUID: heads[0].h.StudyInstanceUID ?? '',
    series: [{
      info: { studyInstanceUID: heads[0].h.StudyInstanceUID ?? '', seriesInstanceUID: heads[0].h.SeriesInstanceUID ?? '', modality, instanceCount: files.length, isOwn: false },
      instances: heads.map(({ path, h }) => ({ sopInstanceUID: h.SOPInstanceUID ?? '', sopClassUID: h.SOPClassUID ?? '', path })),
    }],
  };
  const result = await findingsDetector.run(input, { log: undefined as never });
  return { result, heads };
}

describe.runIf(ready)('issue 8: radnode results in stock OHIF (built-in viewer, no customization, headless Chromium)', { timeout: 240_000 }, () => {
  let stack: ViewerStack;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let crStudy: string;

  beforeAll(async () => {
    stack = await startViewerStack();
    await uploadAll(stack.orthanc, [crFile()]);
    crStudy = (await stack.orthanc.studies())[0];
    await uploadAll(stack.orthanc, ctFiles());
    await Promise.all([waitDelivered(stack, crStudy), waitDelivered(stack, CT_STUDY_UID)]);
    browser = await launchBrowser(READER);
  }, 240_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('RSNA CR: SR and heatmap listed, heatmap drawn, the opacity box hydrated and drawn on the radiograph', async () => {
    const page = await browser.ctx.newPage();
    const { result } = await expectedFindings([crFile()], 'CR');
    const seen = await viewStudy(page, stack.viewerUrl, crStudy, 'cr');
    // Hydrated as OHIF's RectangleROI: OHIF recomputes the area from the corners and Pixel Spacing.
    const box = result.findings[0].place as Place2D;
    const [[x0, y0], [x1, y1]] = box.points;
    const h = readHeader(new Uint8Array(readFileSync(crFile())));
    const [rowMm, colMm] = h.header.numbers('PixelSpacing');
    const areaMm2 = (x1 - x0) * colMm * (y1 - y0) * rowMm;
    const shown = Number(/Area: ([\d.]+) mm/.exec(seen.hydratedText)?.[1]);
    expect(Math.abs(shown - areaMm2) / areaMm2, `OHIF area ${shown} vs radnode ${areaMm2}`).toBeLessThan(0.01);
    // The box is drawn: annotation-yellow pixels appear that the plain image did not have.
    expect(seen.counts.hydrated.yellow).toBeGreaterThan(seen.counts.image.yellow + 300);
    await page.close();
  });

  it('LIDC-IDRI-0001: the LUNA16 nodule on its key slice, SR labels, hydrated bidirectional with radnode\'s axes', async () => {
    const page = await browser.ctx.newPage();
    const files = ctFiles();
    const { result, heads } = await expectedFindings(files, 'CT');
    const key = (result.findings[0].place as Place3D).keyImage;
    const keyHead = heads.find((x) => x.h.SOPInstanceUID === key.sopInstanceUID)!.h;
    const instanceNumber = keyHead.header.number('InstanceNumber');
    const [rowMm, colMm] = keyHead.header.numbers('PixelSpacing');
    const [a, b, c, d] = key.points;
    const longMm = Math.hypot((b[0] - a[0]) * colMm, (b[1] - a[1]) * rowMm);
    const shortMm = Math.hypot((d[0] - c[0]) * colMm, (d[1] - c[1]) * rowMm);
    const seen = await viewStudy(page, stack.viewerUrl, CT_STUDY_UID, 'ct');
    // The SR viewport shows the referenced slice and the SR's own values (axes, probability, diameter).
    expect(seen.sliceOverlay).toContain(`I:${instanceNumber} `);
    // The SR viewport's own read-only overlay (labels in green) is drawn on some runs and not on others, headless
    // (shared/notes/issue-corrections.md, viewer proof): when it is drawn it must carry radnode's values; what is
    // always asserted is the hydrated measurement below.
    if (seen.srText) {
      expect(seen.srText).toContain(`${longMm.toFixed(2)} mm`);
      expect(seen.srText).toContain(`Certainty of Finding: ${CT_PROBABILITY.toFixed(2)}`);
      expect(seen.srText).toMatch(/Path length: 23\.35 mm/);
    }
    // After hydration OHIF draws its own Bidirectional tool and recomputes both axes from the end points.
    const L = Number(/L: ([\d.]+) mm/.exec(seen.hydratedText)?.[1]);
    const W = Number(/W: ([\d.]+) mm/.exec(seen.hydratedText)?.[1]);
    expect(Math.abs(L - longMm), `OHIF L ${L} vs radnode ${longMm}`).toBeLessThanOrEqual(0.051);
    expect(Math.abs(W - shortMm), `OHIF W ${W} vs radnode ${shortMm}`).toBeLessThanOrEqual(0.051);
    expect(seen.counts.hydrated.yellow).toBeGreaterThan(seen.counts.image.yellow + 100);
    await page.close();
  });

  describe('the read-only DICOMweb proxy', () => {
    /** A raw request: fetch would normalise `..` and refuse some methods before they reach the server. */
    const raw = (path: string, method = 'GET', auth: string | null = basic(READER)) =>
      new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
        const u = new URL(stack.viewerUrl);
        const req = request({ host: u.hostname, port: u.port, path, method, headers: auth ? { authorization: auth } : {} }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        });
        req.once('error', reject);
        req.end();
      });

    it('forwards QIDO and WADO-RS reads with the PACS credential, keeping the Host (same-origin BulkDataURIs)', async () => {
      const studies = await raw('/dicom-web/studies?includefield=00081030');
      expect(studies.status).toBe(200);
      expect(studies.body).toContain(CT_STUDY_UID);
      // Orthanc has authentication on: the browser's credential is not Orthanc's, the proxy adds radnode's.
      expect((await fetch(`${stack.orthanc.dicomWebUrl}/studies`)).status).toBe(401);
      const series = JSON.parse((await raw(`/dicom-web/studies/${CT_STUDY_UID}/series`)).body) as { '0020000E': { Value: string[] } }[];
      const ct = series.find((s) => s['0020000E'].Value[0].startsWith('1.3.6.1.4.1.14519'))!['0020000E'].Value[0];
      const meta = await raw(`/dicom-web/studies/${CT_STUDY_UID}/series/${ct}/metadata`);
      expect(meta.status).toBe(200);
      const uris = [...meta.body.matchAll(/"BulkDataURI"\s*:\s*"([^"]+)"/g)].map((m) => m[1]);
      expect(uris.length).toBeGreaterThan(0);
      for (const uri of uris.slice(0, 5)) expect(uri.startsWith(`${stack.viewerUrl}/dicom-web/`)).toBe(true);
      const bulk = await raw(new URL(uris[0]).pathname);
      expect(bulk.status).toBe(200);
      // HEAD is forwarded (Orthanc itself answers 404 to HEAD on QIDO; the proxy does not refuse it).
      expect([403, 405]).not.toContain((await raw('/dicom-web/studies', 'HEAD')).status);
    });

    it('refuses writes (405) and everything outside the read routes (403), dot segments and encoded slashes included', async () => {
      for (const m of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        const r = await raw(`/dicom-web/studies/${CT_STUDY_UID}`, m);
        expect(r.status, m).toBe(405);
        expect(JSON.parse(r.body).code).toBe('RN_VIEWER_METHOD_REFUSED');
      }
      for (const p of [
        '/dicom-web/studies/../../system', '/dicom-web/../instances', '/dicom-web/studies/1.2%2F3/series', '/dicom-web/%2e%2e/system',
        '/dicom-web/studies/1.2.3/series/..%2F..%2Fsystem', '/dicom-web/servers', '/dicom-web/studies/1.2\\3/series', '/dicom-web//studies',
        `/dicom-web/studies/${CT_STUDY_UID}/series/1.2/instances/1.3/file`, '/dicom-web/studies/abc/series',
      ]) {
        const r = await raw(p);
        expect(r.status, p).toBe(403);
        expect(JSON.parse(r.body).code, p).toBe('RN_VIEWER_ROUTE_REFUSED');
      }
    });

    it('needs reader or operator credentials when radnode has users (Basic challenge for the browser)', async () => {
      const none = await raw('/dicom-web/studies', 'GET', null);
      expect(none.status).toBe(401);
      expect(String(none.headers['www-authenticate'])).toMatch(/^Basic realm="radnode viewer"/);
      expect((await raw('/viewer', 'GET', null)).status).toBe(401);
      expect((await raw('/dicom-web/studies', 'GET', basic({ ...READER, password: 'wrong' }))).status).toBe(401);
      expect((await raw('/dicom-web/studies', 'GET', basic(PUSH_USER))).status).toBe(403);
      const page = await raw('/viewer?StudyInstanceUIDs=1.2.3');
      expect(page.status).toBe(200);
      expect(page.headers['cross-origin-embedder-policy']).toBe('require-corp');
      expect(page.body).toContain('app-config.js');
      const cfg = await raw('/app-config.js');
      expect(cfg.body).toContain('"qidoRoot": "/dicom-web"');
      // Stock OHIF, as a site runs it: the SR must display without any customization (src/results/sr/templates/tid1500.ts).
      expect(cfg.body).not.toContain('customizationService');
      expect(cfg.body).toContain('"supportsFuzzyMatching": false');
      const wasm = readdirWasm();
      if (wasm) expect((await raw(`/${wasm}`, 'HEAD')).headers['content-type']).toBe('application/wasm');
    });
  });
});

function readdirWasm(): string | undefined {
  return readdirSync(OHIF_DIR).find((f) => f.endsWith('.wasm'));
}
