import { timingSafeEqual } from 'node:crypto';
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
    return t ? { name: `token:${value.slice(0, 4)}…`, roles: t.roles } : null;
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
