import { createHash, timingSafeEqual } from 'node:crypto';
import type express from 'express';
import type { RadnodeConfig, Role } from '../config/types.ts';
import { RadnodeError } from '../errors.ts';

export type Principal = { name: string; roles: Role[] };

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

const safeEqual = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Who is calling, from Basic or Bearer credentials; null when the credentials are missing or wrong. */
export function authenticate(header: string | undefined, server: RadnodeConfig['server']): Principal | null {
  if (!header) return null;
  const [scheme, value] = header.split(/\s+/, 2);
  if (!value) return null;
  if (/^basic$/i.test(scheme)) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return null;
    const user = server.users.find((u) => u.username === decoded.slice(0, i));
    return user && safeEqual(user.password, decoded.slice(i + 1)) ? { name: user.username, roles: user.roles } : null;
  }
  if (/^bearer$/i.test(scheme)) {
    const t = server.bearerTokens.find((x) => safeEqual(x.token, value));
    // The name goes into audit rows and is shown to readers as the reviewer: a hash, never part of the secret.
    return t ? { name: `token:${createHash('sha256').update(value).digest('hex').slice(0, 8)}`, roles: t.roles } : null;
  }
  return null;
}

/**
 * Without configured users or tokens radnode listens on 127.0.0.1 only and every local caller acts as the local
 * operator (DESIGN §6). With them, each route needs one of its roles; the principal's name goes into audit rows.
 */
export function requireRole(server: RadnodeConfig['server'], ...roles: Role[]): express.RequestHandler {
  const open = server.users.length === 0 && server.bearerTokens.length === 0;
  return (req, _res, next) => {
    if (open) {
      req.principal = { name: 'local', roles: ['ingest', 'reader', 'operator'] };
      return next();
    }
    const p = authenticate(req.headers.authorization, server);
    if (!p) return next(new RadnodeError('RN_AUTH_REQUIRED', req.headers.authorization ? 'the credentials are not valid' : 'this route needs Basic or Bearer credentials'));
    if (!roles.some((r) => p.roles.includes(r))) return next(new RadnodeError('RN_AUTH_FORBIDDEN', `${p.name} lacks the role ${roles.join(' or ')}`));
    req.principal = p;
    next();
  };
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Cross-site guards for the API. With no credentials configured (open mode, loopback only) any page the reader's
 * browser opens could reach radnode through DNS rebinding: only a loopback Host is answered. And a state-changing
 * request (a review, a job cancel or retry) from another site is refused whatever the mode: the browser would attach
 * cached Basic credentials to it. Senders that are not browsers (PACS STOW-RS, scripts) send neither header.
 */
export function crossSiteGuard(server: RadnodeConfig['server']): express.RequestHandler {
  const open = server.users.length === 0 && server.bearerTokens.length === 0;
  return (req, _res, next) => {
    // Host names only: a reverse proxy that forwards `Host $host` (deploy/README.md) drops a non-default port.
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    if (open && !LOOPBACK_HOSTS.has(host))
      return next(new RadnodeError('RN_CROSS_SITE_REQUEST', 'without configured credentials radnode answers loopback Host names only'));
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
    if (req.headers['sec-fetch-site'] === 'cross-site') return next(new RadnodeError('RN_CROSS_SITE_REQUEST', 'a state-changing request from another site'));
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      let originHost = '';
      try {
        originHost = new URL(origin).hostname.toLowerCase();
      } catch {
        // an Origin that is not a URL is not this node
      }
      if (originHost !== host) return next(new RadnodeError('RN_CROSS_SITE_REQUEST', 'a state-changing request from another origin'));
    } else if (origin === 'null') {
      return next(new RadnodeError('RN_CROSS_SITE_REQUEST', 'a state-changing request from an opaque origin'));
    }
    next();
  };
}
