/**
 * The built-in viewer (DESIGN §6, issue 8): the prebuilt OHIF dist served at the root of its own port (the build
 * loads everything from `/`), radnode's own app-config.js, and a read-only DICOMweb proxy to the configured PACS at
 * `/dicom-web`, with radnode's authentication in front when users or tokens are configured.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { extname, join, normalize, sep } from 'node:path';
import type { RadnodeConfig } from '../../config/types.ts';
import { RadnodeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { authenticate } from '../auth.ts';
import { DICOMWEB_PREFIX, ohifAppConfig } from './app-config.ts';
import { decideProxy } from './routes.ts';

export type RunningViewer = { server: Server; port: number; url: string; stop(): Promise<void> };

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  // WebAssembly.instantiateStreaming refuses any other type, and OHIF's codecs are wasm.
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.jpg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

/**
 * Cross-origin isolation (SharedArrayBuffer for Cornerstone's workers), as tested in shared/notes/viewer.md; every
 * subresource is same-origin, so require-corp costs nothing.
 */
const ISOLATION = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
};

/** Request headers the PACS gets; Authorization and cookies are the viewer's, never forwarded. */
const FORWARDED_REQUEST_HEADERS = ['accept', 'accept-encoding', 'if-none-match', 'if-modified-since', 'range', 'user-agent'];
/** Hop-by-hop headers (RFC 9110 §7.6.1) and the PACS's own auth challenge, which must not reach the browser. */
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-authenticate', 'www-authenticate', 'set-cookie', 'upgrade', 'trailer']);

function pacsAuthorization(config: RadnodeConfig): string | undefined {
  const v = config.viewer;
  if (v.pacsToken) return `Bearer ${v.pacsToken}`;
  if (v.pacsUsername) return 'Basic ' + Buffer.from(`${v.pacsUsername}:${v.pacsPassword}`).toString('base64');
  const a = config.pacs?.auth;
  if (a?.type === 'bearer') return `Bearer ${a.token}`;
  if (a?.type === 'basic') return 'Basic ' + Buffer.from(`${a.username}:${a.password}`).toString('base64');
  return undefined;
}

function sendError(res: ServerResponse, err: RadnodeError, extra: OutgoingHttpHeaders = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ code: err.code, message: err.message });
  res.writeHead(err.httpStatus, { ...ISOLATION, ...extra, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

export async function startViewer(config: RadnodeConfig, log: Logger): Promise<RunningViewer> {
  const root = config.viewer.ohifDir;
  if (!config.pacs) throw new RadnodeError('RN_CONFIG_INVALID', 'config key viewer.enabled: the built-in viewer needs a pacs section', { details: { key: 'viewer.enabled' } });
  if (!existsSync(join(root, 'index.html')))
    throw new RadnodeError('RN_VIEWER_UNAVAILABLE', `no OHIF build in ${root} (viewer.ohifDir): run scripts/fetch-ohif`, { details: { ohifDir: root } });
  const pacs = new URL(config.pacs.url);
  // Orthanc writes BulkDataURIs on the request's Host with its own path prefix; a PACS whose root is not
  // /dicom-web writes its own prefix, so both prefixes lead to the proxy.
  const prefixes = [...new Set([DICOMWEB_PREFIX, pacs.pathname.replace(/\/+$/, '')])].filter((p) => p !== '');
  const outboundAuth = pacsAuthorization(config);
  const open = config.server.users.length === 0 && config.server.bearerTokens.length === 0;
  const appConfig = ohifAppConfig({ friendlyName: `radnode (${config.node.stationName})` });
  const indexHtml = join(root, 'index.html');
  const timeoutMs = config.pacs.timeoutMs;

  const proxy = (req: IncomingMessage, res: ServerResponse, subPath: string, query: string) => {
    const headers: OutgoingHttpHeaders = {};
    for (const h of FORWARDED_REQUEST_HEADERS) if (req.headers[h] !== undefined) headers[h] = req.headers[h];
    // The browser's Host is kept: Orthanc builds absolute BulkDataURI/RetrieveURL values from it, and only
    // same-origin URLs reach this proxy again (shared/notes/viewer.md).
    if (req.headers.host) headers.host = req.headers.host;
    if (outboundAuth) headers.authorization = outboundAuth;
    const send = pacs.protocol === 'https:' ? httpsRequest : httpRequest;
    const preq = send(
      { protocol: pacs.protocol, hostname: pacs.hostname, port: pacs.port || undefined, method: req.method, path: `${pacs.pathname.replace(/\/+$/, '')}${subPath}${query}`, headers, timeout: timeoutMs },
      (pres) => {
        if (pres.statusCode === 401 || pres.statusCode === 403) log.warn('the PACS refused the viewer proxy credential', { status: pres.statusCode });
        const out: OutgoingHttpHeaders = { ...ISOLATION, 'cache-control': 'private, no-cache' };
        for (const [k, v] of Object.entries(pres.headers)) if (v !== undefined && !DROPPED_RESPONSE_HEADERS.has(k)) out[k] = v;
        res.writeHead(pres.statusCode ?? 502, out);
        pres.pipe(res);
        pres.once('error', () => res.destroy());
      },
    );
    preq.once('timeout', () => preq.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    preq.once('error', (err) => {
      log.warn('viewer proxy: PACS request failed', { path: subPath, err: err.message });
      sendError(res, new RadnodeError('RN_VIEWER_PACS_UNREACHABLE', `the PACS could not be reached: ${err.message}`));
    });
    // A browser that goes away (OHIF cancels frame requests when scrolling) must not leave the PACS request open.
    res.once('close', () => {
      if (!res.writableFinished) preq.destroy();
    });
    preq.end();
  };

  const serveFile = (req: IncomingMessage, res: ServerResponse, path: string) => {
    let file = path === '/' ? indexHtml : normalize(join(root, path));
    if (!file.startsWith(root + sep) && file !== indexHtml) return sendError(res, new RadnodeError('RN_NOT_FOUND', 'not found'));
    let st = existsSync(file) ? statSync(file) : null;
    if (!st?.isFile()) {
      // SPA fallback: OHIF's routes (/viewer, /segmentation, …) are client-side; a missing asset stays a 404.
      if (extname(path) !== '') return sendError(res, new RadnodeError('RN_NOT_FOUND', `no such file: ${path}`));
      file = indexHtml;
      st = statSync(file);
    }
    // Webpack chunks carry a content hash in their names; anything else may change with a new dist.
    const hashed = /\.[0-9a-f]{16,}\.(js|css|wasm)$/.test(file) || extname(file) === '.wasm';
    res.writeHead(200, {
      ...ISOLATION,
      'content-type': MIME[extname(file)] ?? 'application/octet-stream',
      'content-length': st.size,
      'cache-control': `${open ? 'public' : 'private'}, ${hashed ? 'max-age=31536000, immutable' : 'no-cache'}`,
      'last-modified': st.mtime.toUTCString(),
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const query = q < 0 ? '' : raw.slice(q);
    // Browsers fetch the web app manifest without credentials; it names the app and nothing else.
    if (!open && path !== '/manifest.json') {
      const p = authenticate(req.headers.authorization, config.server);
      // Basic with a challenge, because a browser opening the viewer asks its user for exactly that.
      if (!p) return sendError(res, new RadnodeError('RN_AUTH_REQUIRED', req.headers.authorization ? 'the credentials are not valid' : 'the viewer needs credentials'), { 'www-authenticate': 'Basic realm="radnode viewer", charset="UTF-8"' });
      if (!p.roles.includes('reader') && !p.roles.includes('operator')) return sendError(res, new RadnodeError('RN_AUTH_FORBIDDEN', `${p.name} lacks the role reader or operator`));
    }
    const prefix = prefixes.find((p) => path === p || path.startsWith(p + '/'));
    if (prefix !== undefined) {
      const d = decideProxy(req.method ?? 'GET', path.slice(prefix.length));
      if (!d.forward) {
        log.info('viewer proxy refused a request', { method: req.method, status: d.status, reason: d.reason });
        return sendError(res, new RadnodeError(d.status === 405 ? 'RN_VIEWER_METHOD_REFUSED' : 'RN_VIEWER_ROUTE_REFUSED', d.reason), d.status === 405 ? { allow: 'GET, HEAD' } : {});
      }
      return proxy(req, res, d.subPath, query);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, new RadnodeError('RN_VIEWER_METHOD_REFUSED', `method ${req.method} is not allowed`), { allow: 'GET, HEAD' });
    if (/[\\%]/.test(path) || path.split('/').includes('..')) return sendError(res, new RadnodeError('RN_VIEWER_ROUTE_REFUSED', 'encoded characters and dot segments are not allowed'));
    if (path === '/app-config.js') {
      res.writeHead(200, { ...ISOLATION, 'content-type': MIME['.js'], 'content-length': Buffer.byteLength(appConfig), 'cache-control': 'no-cache' });
      return res.end(req.method === 'HEAD' ? undefined : appConfig);
    }
    serveFile(req, res, path);
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      log.error('viewer request failed', { err: (err as Error).message });
      sendError(res, new RadnodeError('RN_INTERNAL', 'internal error'));
    }
  });
  server.keepAliveTimeout = 5_000;
  const host = config.viewer.host || config.server.host;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new RadnodeError('RN_VIEWER_UNAVAILABLE', `the viewer cannot listen on ${host}:${config.viewer.port}: ${err.message}`, { cause: err })));
    server.listen(config.viewer.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.viewer.port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info('built-in viewer started', { url, ohifDir: root, pacs: `${pacs.protocol}//${pacs.host}${pacs.pathname}`, auth: open ? 'none (loopback)' : 'reader/operator' });
  return {
    server, port, url,
    async stop() {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  };
}
