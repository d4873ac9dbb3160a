import express from 'express';
import type { RadnodeConfig } from '../config/types.ts';
import { asRadnodeError, RadnodeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { SqliteStore } from '../store/store.ts';
import { buildWorklistPage, type PageAssets } from './bundle.ts';
import { REVIEW_DECISIONS, type ReviewDecision } from './model.ts';
import { etagMatches, parseWorklistQuery, worklistEtag } from './query.ts';
import type { WorklistService } from './service.ts';
import { heatmapThumbnailPng } from './thumbnail.ts';

// The page loads only its own files and talks only to its own origin; with no inline script allowed, markup that
// slipped into a patient name could not run even if it reached the DOM as HTML.
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const SSE_HEARTBEAT_MS = 15_000;
const THUMBNAIL_CACHE = 500;
// DICOM UIDs: digits and dots, at most 64 characters (PS3.5 §9.1).
const UID = /^[0-9.]{1,64}$/;

function studyParam(req: express.Request): string {
  const s = req.params.study;
  if (typeof s !== 'string' || !UID.test(s)) throw new RadnodeError('RN_WORKLIST_BAD_REQUEST', 'the study must be a Study Instance UID');
  return s;
}

/**
 * /worklist (the page) and /api/worklist (JSON, ETag, server-sent events, heatmap thumbnails, open and review).
 * Every route needs the reader or operator role (`readRole`); reviews are recorded under the caller's name.
 */
export function createWorklistRouter(deps: { service: WorklistService; store: SqliteStore; config: RadnodeConfig; readRole: express.RequestHandler; log: Logger }): express.Router {
  const { service, store, config, readRole, log } = deps;
  const model = service.model;
  const router = express.Router();
  let assets: Promise<PageAssets> | null = null;
  const page = () => (assets ??= buildWorklistPage().catch((err) => {
    assets = null; // a later request tries again
    throw err;
  }));
  // Built as the router is made, so the first reader does not wait for esbuild.
  void page().catch((err) => log.error('worklist page build failed', { err: asRadnodeError(err) }));

  const sendAsset = (kind: keyof PageAssets, type: string): express.RequestHandler => async (_req, res) => {
    const a = await page();
    res.setHeader('content-type', type);
    res.setHeader('cache-control', 'no-cache');
    res.setHeader('x-content-type-options', 'nosniff');
    if (kind === 'html') {
      res.setHeader('content-security-policy', PAGE_CSP);
      res.setHeader('referrer-policy', 'no-referrer');
    }
    res.send(a[kind]);
  };
  router.get(['/worklist', '/worklist/'], readRole, sendAsset('html', 'text/html; charset=utf-8'));
  router.get('/worklist/app.js', readRole, sendAsset('js', 'text/javascript; charset=utf-8'));
  router.get('/worklist/app.css', readRole, sendAsset('css', 'text/css; charset=utf-8'));

  router.get('/api/worklist/config', readRole, (req, res) => {
    res.json({ viewerUrlPattern: config.worklist.viewerUrlPattern, viewerPort: config.viewer.port, viewerEnabled: config.viewer.enabled, user: req.principal?.name ?? '' });
  });

  router.get('/api/worklist', readRole, async (req, res) => {
    const q = parseWorklistQuery(req.query as Record<string, unknown>);
    const version = model.version();
    const etag = worklistEtag(version, q);
    res.setHeader('etag', etag);
    res.setHeader('cache-control', 'private, no-cache');
    if (etagMatches(req.header('if-none-match'), etag)) {
      res.status(304).end();
      return;
    }
    const { total, rows } = await model.list(q);
    res.json({ version, total, offset: q.offset, limit: q.limit, rows, facets: await model.facets() });
  });

  router.get('/api/worklist/events', readRole, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    // A reconnecting EventSource waits this long; the page re-reads the list on every (re)open.
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ version: model.version() })}\n\n`);
    const unsubscribe = service.subscribe((c) => {
      // Only the study UID, its priority and the version: the page fetches rows itself, through its filters.
      res.write(`event: change\nid: ${c.version}\ndata: ${JSON.stringify(c)}\n\n`);
    });
    const beat = setInterval(() => res.write(': ping\n\n'), SSE_HEARTBEAT_MS);
    req.on('close', () => {
      clearInterval(beat);
      unsubscribe();
    });
  });

  const thumbnails = new Map<string, Uint8Array>();
  router.get('/api/worklist/:study/heatmap.png', readRole, async (req, res) => {
    const row = await model.get(studyParam(req));
    if (!row?.keyJobId) throw new RadnodeError('RN_WORKLIST_STUDY_NOT_FOUND', 'the study has no result with a heatmap');
    const sc = (await store.listOutputs(row.keyJobId)).find((o) => o.kind === 'heatmap-sc' && !o.retracted_at);
    if (!sc) throw new RadnodeError('RN_WORKLIST_STUDY_NOT_FOUND', 'the study has no result with a heatmap');
    if (sc.purged_at && !thumbnails.has(sc.sop_instance_uid))
      throw new RadnodeError('RN_WORKLIST_STUDY_NOT_FOUND', 'the heatmap was delivered and its local copy deleted by retention (data.purgeAfterHours): open the study in the viewer');
    let png = thumbnails.get(sc.sop_instance_uid);
    if (!png) {
      png = await heatmapThumbnailPng(sc.path);
      // Outputs are immutable (written once, DESIGN §3): the cache is keyed by SOP Instance UID and never stale.
      if (thumbnails.size >= THUMBNAIL_CACHE) thumbnails.delete(thumbnails.keys().next().value!);
      thumbnails.set(sc.sop_instance_uid, png);
    }
    res.setHeader('content-type', 'image/png');
    res.setHeader('cache-control', 'private, max-age=86400, immutable');
    res.send(Buffer.from(png));
  });

  router.post('/api/worklist/:study/open', readRole, async (req, res) => {
    const change = await model.markOpened(studyParam(req), req.principal!.name);
    service.publish(change);
    res.json(await model.get(studyParam(req)));
  });

  router.post('/api/worklist/:study/review', readRole, express.text({ type: () => true, limit: '16kb' }), async (req, res) => {
    // JSON only: a browser sends JSON cross-site only after a CORS preflight, which radnode never grants.
    if (!req.is('application/json')) throw new RadnodeError('RN_WORKLIST_BAD_REQUEST', 'expected Content-Type: application/json');
    let body: unknown;
    try {
      body = JSON.parse(typeof req.body === 'string' ? req.body : '');
    } catch {
      throw new RadnodeError('RN_WORKLIST_BAD_REQUEST', 'expected a JSON body { decision, reason, stage }');
    }
    if (typeof body !== 'object' || body === null) throw new RadnodeError('RN_WORKLIST_BAD_REQUEST', 'expected a JSON body { decision, reason, stage }');
    const { decision, reason, stage } = body as Record<string, unknown>;
    if (typeof decision !== 'string' || !REVIEW_DECISIONS.includes(decision as ReviewDecision))
      throw new RadnodeError('RN_WORKLIST_BAD_REQUEST', `decision must be one of ${REVIEW_DECISIONS.join(', ')}`);
    if (reason !== undefined && reason !== null && (typeof reason !== 'string' || reason.length > 1000))
      throw new RadnodeError('RN_WORKLIST_BAD_REQUEST', 'reason must be a string of at most 1000 characters');
    if (stage !== undefined && stage !== 'first' && stage !== 'second') throw new RadnodeError('RN_WORKLIST_BAD_REQUEST', 'stage must be first or second');
    const change = await model.review(studyParam(req), {
      reader: req.principal!.name, decision: decision as ReviewDecision, reason: typeof reason === 'string' && reason.trim() ? reason.trim() : null, stage: stage ?? 'first',
    });
    service.publish(change);
    res.json(await model.get(studyParam(req)));
  });

  return router;
}
