import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { RadnodeError } from '../errors.ts';
import { isValidUidRoot } from '../results/uids.ts';
import { DEFAULT_CONFIG } from './defaults.ts';
import type { PacsAuth, RadnodeConfig, Role, RoutingMatch } from './types.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: unknown };

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(key: string, value: unknown, expected: string): RadnodeError {
  const shown = typeof value === 'string' && /password|token/i.test(key) ? '[secret]' : JSON.stringify(value);
  return new RadnodeError('RN_CONFIG_INVALID', `config key ${key}: ${expected}, got ${shown}`, { details: { key } });
}

/** Secret values may be given as `env:NAME` or `file:PATH` so that no secret sits in the config file. */
function resolveSecret(key: string, value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof value !== 'string') return value;
  if (value.startsWith('env:')) {
    const v = env[value.slice(4)];
    if (v === undefined) throw invalid(key, value, `environment variable ${value.slice(4)} is not set`);
    return v;
  }
  if (value.startsWith('file:')) {
    try {
      return readFileSync(value.slice(5), 'utf8').trim();
    } catch {
      throw invalid(key, value, 'secret file cannot be read');
    }
  }
  return value;
}

function mergeDeep(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return over === undefined ? base : over;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeDeep(base[k], v) : v;
  return out;
}

const toEnvName = (path: string[]) => 'RADNODE_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');

/** Every scalar leaf of the defaults can be overridden by RADNODE_<SECTION>_<KEY>; arrays take JSON. */
function envOverrides(env: NodeJS.ProcessEnv): Obj {
  const out: Obj = {};
  const set = (path: string[], value: unknown) => {
    let o = out;
    for (const p of path.slice(0, -1)) o = (o[p] = isObj(o[p]) ? o[p] : {}) as Obj;
    o[path[path.length - 1]] = value;
  };
  const walk = (node: unknown, path: string[]) => {
    if (isObj(node)) {
      for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
      return;
    }
    const name = toEnvName(path);
    const raw = env[name];
    if (raw === undefined) return;
    if (typeof node === 'number') set(path, raw.trim() === '' ? NaN : Number(raw));
    else if (typeof node === 'boolean') set(path, raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw);
    else if (Array.isArray(node)) {
      try {
        set(path, JSON.parse(raw));
      } catch {
        throw invalid(path.join('.'), raw, `${name} must be a JSON array`);
      }
    } else set(path, raw);
  };
  walk(DEFAULT_CONFIG, []);
  walk({ node: { institutionName: '' } }, []);
  // The PACS is absent by default, so its keys are listed explicitly.
  const pacs: Obj = {};
  const pacsKeys: [string, string][] = [
    ['RADNODE_PACS_URL', 'url'], ['RADNODE_PACS_KIND', 'kind'], ['RADNODE_PACS_ORTHANC_URL', 'orthancUrl'],
    ['RADNODE_PACS_USERNAME', 'username'], ['RADNODE_PACS_PASSWORD', 'password'], ['RADNODE_PACS_TOKEN', 'token'],
    ['RADNODE_PACS_TIMEOUT_MS', 'timeoutMs'],
  ];
  for (const [name, key] of pacsKeys) if (env[name] !== undefined) pacs[key] = key === 'timeoutMs' ? Number(env[name]) : env[name];
  if (Object.keys(pacs).length) out.pacs = pacs;
  return out;
}

// ---- validation: small readers that name the key and the bad value ----
const str = (o: Obj, k: string, path: string, opts: { optional?: boolean; nonEmpty?: boolean; maxLength?: number } = {}): string | undefined => {
  const v = o[k];
  if (v === undefined && opts.optional) return undefined;
  if (typeof v !== 'string' || (opts.nonEmpty && v.trim() === '')) throw invalid(`${path}.${k}`, v, opts.nonEmpty ? 'expected a non-empty string' : 'expected a string');
  // Values written into every result object: longer than their VR allows, each object would be invalid DICOM.
  if (opts.maxLength !== undefined && v.length > opts.maxLength) throw invalid(`${path}.${k}`, v, `expected at most ${opts.maxLength} characters (it is written as a DICOM ${opts.maxLength === 16 ? 'SH' : 'LO'} value)`);
  return v;
};
const num = (o: Obj, k: string, path: string, min: number, max = Number.MAX_SAFE_INTEGER, integer = true): number => {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v)))
    throw invalid(`${path}.${k}`, v, `expected ${integer ? 'an integer' : 'a number'} between ${min} and ${max}`);
  return v;
};
const bool = (o: Obj, k: string, path: string): boolean => {
  const v = o[k];
  if (typeof v !== 'boolean') throw invalid(`${path}.${k}`, v, 'expected true or false');
  return v;
};
function oneOf<T extends string>(o: Obj, k: string, path: string, values: readonly T[]): T {
  const v = o[k];
  if (typeof v !== 'string' || !values.includes(v as T)) throw invalid(`${path}.${k}`, v, `expected one of ${values.join(', ')}`);
  return v as T;
}
const strList = (o: Obj, k: string, path: string): string[] => {
  const v = o[k] ?? [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid(`${path}.${k}`, v, 'expected a list of strings');
  return v as string[];
};
const section = (o: Obj, k: string): Obj => {
  const v = o[k];
  if (!isObj(v)) throw invalid(k, v, 'expected a mapping');
  return v;
};
/** A misspelt key would otherwise be dropped silently and its default used (a typo in poll.enabled turns the
 * reconciliation poll off without a word), so keys a section does not know are rejected like unknown sections. */
function onlyKnown(o: Obj, path: string, known: readonly string[]): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) throw invalid(`${path}.${k}`, o[k], `unknown key (known: ${known.join(', ')})`);
}
const defaultKeys = (name: keyof RadnodeConfig, extra: string[] = []): string[] => [...Object.keys(DEFAULT_CONFIG[name] ?? {}), ...extra];
const ROLES: readonly Role[] = ['ingest', 'reader', 'operator'];
function roles(o: Obj, path: string): Role[] {
  const list = strList(o, 'roles', path);
  for (const r of list) if (!ROLES.includes(r as Role)) throw invalid(`${path}.roles`, r, `expected roles among ${ROLES.join(', ')}`);
  return list as Role[];
}

function checkRegex(path: string, v: string | undefined): void {
  if (v === undefined) return;
  try {
    new RegExp(v, 'i');
  } catch {
    throw invalid(path, v, 'expected a valid regular expression');
  }
}

function validateMatch(m: unknown, path: string): RoutingMatch {
  if (!isObj(m)) throw invalid(path, m, 'expected a mapping of conditions');
  const known = ['modality', 'sopClassUID', 'imageTypeIncludes', 'imageTypeExcludes', 'bodyPart', 'viewPosition', 'sliceThicknessMmMax', 'sliceThicknessMmMin', 'seriesDescription', 'seriesDescriptionExcludes', 'minInstances'];
  for (const k of Object.keys(m)) if (!known.includes(k)) throw invalid(`${path}.${k}`, m[k], `unknown condition (known: ${known.join(', ')})`);
  const out: RoutingMatch = {};
  for (const k of ['modality', 'sopClassUID', 'imageTypeIncludes', 'imageTypeExcludes', 'bodyPart', 'viewPosition'] as const)
    if (m[k] !== undefined) out[k] = strList(m, k, path);
  for (const k of ['sliceThicknessMmMax', 'sliceThicknessMmMin'] as const) if (m[k] !== undefined) out[k] = num(m, k, path, 0, 1000, false);
  if (m.minInstances !== undefined) out.minInstances = num(m, 'minInstances', path, 1);
  for (const k of ['seriesDescription', 'seriesDescriptionExcludes'] as const)
    if (m[k] !== undefined) {
      out[k] = str(m, k, path);
      checkRegex(`${path}.${k}`, out[k]);
    }
  return out;
}

function validateAuth(p: Obj, env: NodeJS.ProcessEnv): PacsAuth {
  const password = resolveSecret('pacs.password', p.password, env);
  const token = resolveSecret('pacs.token', p.token, env);
  if (typeof token === 'string' && token !== '') return { type: 'bearer', token };
  if (p.username !== undefined) {
    const username = str(p, 'username', 'pacs', { nonEmpty: true })!;
    if (typeof password !== 'string') throw invalid('pacs.password', password, 'expected a password with pacs.username');
    return { type: 'basic', username, password };
  }
  return { type: 'none' };
}

function httpUrl(key: string, v: unknown): string {
  if (typeof v !== 'string') throw invalid(key, v, 'expected an http(s) URL');
  try {
    const u = new URL(v);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw invalid(key, v, 'expected an http(s) URL');
  }
  return v.replace(/\/+$/, '');
}

const LOOPBACK = ['127.0.0.1', 'localhost', '::1'];

/** The worklist section: a viewer pattern that names the study, and a webhook that cannot be sent unsigned. */
function validateWorklist(wl: Obj, env: NodeJS.ProcessEnv): RadnodeConfig['worklist'] {
  onlyKnown(wl, 'worklist', defaultKeys('worklist'));
  const viewerUrlPattern = str(wl, 'viewerUrlPattern', 'worklist', { nonEmpty: true })!;
  if (!viewerUrlPattern.includes('{study}')) throw invalid('worklist.viewerUrlPattern', viewerUrlPattern, 'expected a URL pattern containing {study}');
  const wh = wl.webhook;
  if (!isObj(wh)) throw invalid('worklist.webhook', wh, 'expected a mapping');
  onlyKnown(wh, 'worklist.webhook', Object.keys(DEFAULT_CONFIG.worklist.webhook));
  const url = str(wh, 'url', 'worklist.webhook')!;
  if (url !== '') httpUrl('worklist.webhook.url', url);
  const secret = resolveSecret('worklist.webhook.secret', wh.secret, env);
  if (typeof secret !== 'string') throw invalid('worklist.webhook.secret', '[secret]', 'expected a string');
  // An unsigned webhook would let anyone who can reach the receiver forge an urgent alert.
  if (url !== '' && secret.length < 16) throw invalid('worklist.webhook.secret', '[secret]', 'expected a secret of at least 16 characters with worklist.webhook.url');
  return {
    viewerUrlPattern,
    webhook: {
      url, secret,
      maxAttempts: num(wh, 'maxAttempts', 'worklist.webhook', 1, 100),
      backoffBaseMs: num(wh, 'backoffBaseMs', 'worklist.webhook', 0),
      backoffMaxMs: num(wh, 'backoffMaxMs', 'worklist.webhook', 0),
      timeoutMs: num(wh, 'timeoutMs', 'worklist.webhook', 100, 600_000),
    },
  };
}

/** AE titles are at most 16 characters of the default repertoire, no backslash (PS3.5 VR AE). */
function aeTitle(key: string, v: unknown, allowEmpty = false): string {
  if (typeof v !== 'string' || (!allowEmpty && v.trim() === '') || v.length > 16 || /[\\\x00-\x1f]/.test(v)) throw invalid(key, v, 'expected an AE title of 1 to 16 characters without a backslash');
  return v.trim();
}

/** The DIMSE gateway: the SCP accepts only listed callers, so a misspelt caller key must not widen or narrow it silently. */
function validateDimse(m: Obj): RadnodeConfig['dimse'] {
  onlyKnown(m, 'dimse', defaultKeys('dimse'));
  const callersRaw = m.knownCallers ?? [];
  if (!Array.isArray(callersRaw)) throw invalid('dimse.knownCallers', callersRaw, 'expected a list of { aeTitle, host?, quietSeconds?, detectors? }');
  const knownCallers = callersRaw.map((c: unknown, i: number) => {
    const path = `dimse.knownCallers[${i}]`;
    if (!isObj(c)) throw invalid(path, c, 'expected { aeTitle, host?, quietSeconds?, detectors? }');
    onlyKnown(c, path, ['aeTitle', 'host', 'quietSeconds', 'detectors']);
    return {
      aeTitle: aeTitle(`${path}.aeTitle`, c.aeTitle),
      ...(c.host !== undefined ? { host: str(c, 'host', path, { nonEmpty: true })! } : {}),
      ...(c.quietSeconds !== undefined ? { quietSeconds: num(c, 'quietSeconds', path, 0, 86_400, false) } : {}),
      ...(c.detectors !== undefined ? { detectors: strList(c, 'detectors', path) } : {}),
    };
  });
  const d = isObj(m.destination) ? m.destination : (() => { throw invalid('dimse.destination', m.destination, 'expected a mapping'); })();
  onlyKnown(d, 'dimse.destination', Object.keys(DEFAULT_CONFIG.dimse.destination));
  const destAe = aeTitle('dimse.destination.aeTitle', d.aeTitle, true);
  const destHost = str(d, 'host', 'dimse.destination')!;
  if (destAe && !destHost) throw invalid('dimse.destination.host', destHost, 'expected the host of dimse.destination.aeTitle');
  return {
    enabled: bool(m, 'enabled', 'dimse'),
    host: str(m, 'host', 'dimse', { nonEmpty: true })!,
    port: num(m, 'port', 'dimse', 0, 65535),
    aeTitle: aeTitle('dimse.aeTitle', m.aeTitle),
    knownCallers,
    destination: { aeTitle: destAe, host: destHost, port: num(d, 'port', 'dimse.destination', 1, 65535) },
    timeoutMs: num(m, 'timeoutMs', 'dimse', 100, 600_000),
  };
}

/** The viewer shows patient images: it gets the same loopback-only rule as the API when no credentials exist. */
function validateViewer(v: Obj, server: { pacs: RadnodeConfig['pacs']; host: string; port: number; open: boolean }, env: NodeJS.ProcessEnv): RadnodeConfig['viewer'] {
  onlyKnown(v, 'viewer', defaultKeys('viewer'));
  const enabled = bool(v, 'enabled', 'viewer');
  if (enabled && !server.pacs) throw invalid('viewer.enabled', true, 'the built-in viewer reads studies from the PACS: it needs a pacs section (pacs.url)');
  const host = str(v, 'host', 'viewer')!;
  if (server.open && host !== '' && !LOOPBACK.includes(host)) throw invalid('viewer.host', host, 'without server.users or server.bearerTokens the viewer listens on 127.0.0.1 only');
  const port = num(v, 'port', 'viewer', 0, 65535);
  if (enabled && port !== 0 && port === server.port) throw invalid('viewer.port', port, 'expected a port other than server.port (OHIF needs the root of its own origin)');
  const secret = (k: string): string => {
    const value = resolveSecret(`viewer.${k}`, v[k], env);
    if (typeof value !== 'string') throw invalid(`viewer.${k}`, value, 'expected a string');
    return value;
  };
  const pacsUsername = str(v, 'pacsUsername', 'viewer')!;
  const pacsPassword = secret('pacsPassword');
  if (pacsUsername !== '' && pacsPassword === '') throw invalid('viewer.pacsPassword', '', 'expected a password with viewer.pacsUsername');
  return { enabled, host, port, ohifDir: str(v, 'ohifDir', 'viewer')!, pacsUsername, pacsPassword, pacsToken: secret('pacsToken') };
}

/** Turns merged raw input into a typed, validated config; every message names the key and the bad value. */
export function validateConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): RadnodeConfig {
  if (!isObj(raw)) throw invalid('(root)', raw, 'expected a mapping');
  const known = Object.keys(DEFAULT_CONFIG);
  for (const k of Object.keys(raw)) if (!known.includes(k)) throw invalid(k, raw[k], `unknown section (known: ${known.join(', ')})`);

  const s = section(raw, 'server');
  onlyKnown(s, 'server', defaultKeys('server'));
  const usersRaw = s.users ?? [];
  if (!Array.isArray(usersRaw)) throw invalid('server.users', usersRaw, 'expected a list');
  const users = usersRaw.map((u, i) => {
    const path = `server.users[${i}]`;
    if (!isObj(u)) throw invalid(path, u, 'expected { username, password, roles }');
    onlyKnown(u, path, ['username', 'password', 'roles']);
    const password = resolveSecret(`${path}.password`, u.password, env);
    if (typeof password !== 'string' || password === '') throw invalid(`${path}.password`, '[secret]', 'expected a non-empty password');
    return { username: str(u, 'username', path, { nonEmpty: true })!, password, roles: roles(u, path) };
  });
  const tokensRaw = s.bearerTokens ?? [];
  if (!Array.isArray(tokensRaw)) throw invalid('server.bearerTokens', tokensRaw, 'expected a list');
  const bearerTokens = tokensRaw.map((t, i) => {
    const path = `server.bearerTokens[${i}]`;
    if (!isObj(t)) throw invalid(path, t, 'expected { token, roles }');
    onlyKnown(t, path, ['token', 'roles']);
    const token = resolveSecret(`${path}.token`, t.token, env);
    if (typeof token !== 'string' || token.length < 16) throw invalid(`${path}.token`, '[secret]', 'expected a token of at least 16 characters');
    return { token, roles: roles(t, path) };
  });
  const host = str(s, 'host', 'server', { nonEmpty: true })!;
  if (users.length === 0 && bearerTokens.length === 0 && !['127.0.0.1', 'localhost', '::1'].includes(host))
    throw invalid('server.host', host, 'without server.users or server.bearerTokens radnode listens on 127.0.0.1 only');

  const d = section(raw, 'data');
  onlyKnown(d, 'data', defaultKeys('data'));
  const n = section(raw, 'node');
  onlyKnown(n, 'node', defaultKeys('node', ['institutionName']));
  const uidRoot = str(n, 'uidRoot', 'node', { nonEmpty: true })!;
  if (!isValidUidRoot(uidRoot)) throw invalid('node.uidRoot', uidRoot, 'expected a dotted-decimal UID root of at most 32 characters');
  const w = section(raw, 'workflow');
  onlyKnown(w, 'workflow', defaultKeys('workflow'));
  const r = section(raw, 'routing');
  onlyKnown(r, 'routing', defaultKeys('routing'));
  if (!Array.isArray(r.rules)) throw invalid('routing.rules', r.rules, 'expected a list of { detector, match }');
  const rules = r.rules.map((rule: unknown, i: number) => {
    const path = `routing.rules[${i}]`;
    if (!isObj(rule)) throw invalid(path, rule, 'expected { detector, match }');
    onlyKnown(rule, path, ['detector', 'match']);
    return { detector: str(rule, 'detector', path, { nonEmpty: true })!, match: validateMatch(rule.match, `${path}.match`) };
  });

  let pacs: RadnodeConfig['pacs'] = null;
  if (raw.pacs !== null && raw.pacs !== undefined) {
    const p = section(raw, 'pacs');
    onlyKnown(p, 'pacs', ['kind', 'url', 'orthancUrl', 'username', 'password', 'token', 'timeoutMs']);
    const kind = p.kind === undefined ? 'dicomweb' : oneOf(p, 'kind', 'pacs', ['dicomweb', 'orthanc'] as const);
    const url = httpUrl('pacs.url', p.url);
    const orthancUrl = p.orthancUrl !== undefined ? httpUrl('pacs.orthancUrl', p.orthancUrl) : kind === 'orthanc' ? url.replace(/\/dicom-web$/, '') : undefined;
    pacs = { kind, url, orthancUrl, auth: validateAuth(p, env), timeoutMs: p.timeoutMs === undefined ? 30_000 : num(p, 'timeoutMs', 'pacs', 100, 600_000) };
  }
  const dl = section(raw, 'delivery');
  onlyKnown(dl, 'delivery', defaultKeys('delivery'));
  const mode = oneOf(dl, 'mode', 'delivery', ['pacs', 'dimse', 'folder', 'shadow'] as const);
  if (mode === 'pacs' && !pacs) throw invalid('delivery.mode', mode, 'mode pacs needs a pacs section (pacs.url)');
  const dimse = validateDimse(section(raw, 'dimse'));
  if (mode === 'dimse' && !dimse.destination.aeTitle) throw invalid('delivery.mode', mode, 'mode dimse needs dimse.destination (aeTitle, host, port)');
  const pl = section(raw, 'poll');
  onlyKnown(pl, 'poll', defaultKeys('poll'));
  const pollEnabled = bool(pl, 'enabled', 'poll');
  const pollSource = oneOf(pl, 'source', 'poll', ['qido', 'orthanc-changes', 'dimse'] as const);
  if (pollEnabled && pollSource === 'dimse' && (!dimse.enabled || !dimse.destination.aeTitle))
    throw invalid('poll.source', pollSource, 'dimse polling needs dimse.enabled and dimse.destination (the PACS C-MOVEs to radnode\'s own SCP)');
  if (pollEnabled && pollSource !== 'dimse' && !pacs) throw invalid('poll.enabled', true, 'polling needs a pacs section (pacs.url)');
  if (pollEnabled && pollSource === 'orthanc-changes' && pacs?.kind !== 'orthanc') throw invalid('poll.source', pollSource, 'orthanc-changes needs pacs.kind orthanc');
  const schedule = str(pl, 'schedule', 'poll', { nonEmpty: true })!;
  const fields = schedule.trim().split(/\s+/).length;
  if (fields < 5 || fields > 6) throw invalid('poll.schedule', schedule, 'expected a cron expression of 5 or 6 fields');
  const det = section(raw, 'detectors');
  onlyKnown(det, 'detectors', defaultKeys('detectors'));
  const inf = section(raw, 'inference');
  onlyKnown(inf, 'inference', defaultKeys('inference'));
  const providers = strList(inf, 'executionProviders', 'inference');
  if (providers.length === 0 || providers.some((p) => p !== 'cpu' && p !== 'cuda') || providers.at(-1) !== 'cpu' || new Set(providers).size !== providers.length)
    throw invalid('inference.executionProviders', providers, "expected ['cpu'] or ['cuda', 'cpu'] (cpu last, as the fallback)");
  const lg = section(raw, 'logging');
  onlyKnown(lg, 'logging', defaultKeys('logging'));
  const rs = section(raw, 'results');
  onlyKnown(rs, 'results', defaultKeys('results'));
  const viewer = validateViewer(section(raw, 'viewer'), { pacs, host, port: num(s, 'port', 'server', 0, 65535), open: users.length === 0 && bearerTokens.length === 0 }, env);

  return {
    server: { host, port: num(s, 'port', 'server', 0, 65535), maxStowBytes: num(s, 'maxStowBytes', 'server', 1024), users, bearerTokens },
    data: { dir: str(d, 'dir', 'data', { nonEmpty: true })!, minFreeMb: num(d, 'minFreeMb', 'data', 0), purgeAfterHours: num(d, 'purgeAfterHours', 'data', 0, 24 * 3650, false) },
    node: {
      uidRoot,
      manufacturer: str(n, 'manufacturer', 'node', { nonEmpty: true, maxLength: 64 })!,
      modelName: str(n, 'modelName', 'node', { nonEmpty: true, maxLength: 64 })!,
      institutionName: str(n, 'institutionName', 'node', { optional: true, maxLength: 64 }) || undefined,
      stationName: str(n, 'stationName', 'node', { nonEmpty: true, maxLength: 16 })!,
    },
    workflow: {
      quietSeconds: num(w, 'quietSeconds', 'workflow', 0, 86_400, false),
      wholeStudySenders: strList(w, 'wholeStudySenders', 'workflow'),
      tickMs: num(w, 'tickMs', 'workflow', 50, 60_000),
      maxAttempts: num(w, 'maxAttempts', 'workflow', 1, 100),
      backoffBaseMs: num(w, 'backoffBaseMs', 'workflow', 0),
      backoffMaxMs: num(w, 'backoffMaxMs', 'workflow', 0),
      leaseMs: num(w, 'leaseMs', 'workflow', 1000),
      thinSliceWaitMinutes: num(w, 'thinSliceWaitMinutes', 'workflow', 0, 24 * 60, false),
    },
    routing: { rules },
    pacs,
    delivery: {
      mode,
      folder: str(dl, 'folder', 'delivery')!,
      confirmTimeoutMs: num(dl, 'confirmTimeoutMs', 'delivery', 0),
      retractSuperseded: bool(dl, 'retractSuperseded', 'delivery'),
    },
    poll: { enabled: pollEnabled, schedule, source: pollSource, lookbackDays: num(pl, 'lookbackDays', 'poll', 0, 3650), onlyRoutedModalities: bool(pl, 'onlyRoutedModalities', 'poll') },
    detectors: { modules: strList(det, 'modules', 'detectors'), disabled: strList(det, 'disabled', 'detectors') },
    inference: {
      modelsDir: str(inf, 'modelsDir', 'inference')!,
      intraOpThreads: num(inf, 'intraOpThreads', 'inference', 0, 256),
      interOpThreads: num(inf, 'interOpThreads', 'inference', 0, 256),
      executionProviders: providers as ('cpu' | 'cuda')[],
    },
    logging: { level: oneOf(lg, 'level', 'logging', ['debug', 'info', 'warn', 'error', 'silent'] as const) },
    results: { trackingIdentifierStyle: oneOf(rs, 'trackingIdentifierStyle', 'results', ['cornerstone3D', 'detector'] as const) },
    viewer,
    dimse,
    worklist: validateWorklist(section(raw, 'worklist'), env),
  };
}

function readConfigFile(file: string): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RadnodeError('RN_CONFIG_UNREADABLE', `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return (extname(file) === '.json' ? JSON.parse(text) : parseYaml(text)) as Json;
  } catch (err) {
    throw new RadnodeError('RN_CONFIG_UNREADABLE', `cannot parse config file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Embedded defaults, then the file (if any), then RADNODE_* environment variables, then command-line overrides.
 * Relative paths in the file are resolved against the file's folder, so a config can travel with its data.
 */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Obj } = {}): RadnodeConfig {
  const env = opts.env ?? process.env;
  let fileCfg: unknown = {};
  const file = opts.file ?? env.RADNODE_CONFIG;
  if (file) {
    fileCfg = readConfigFile(file) ?? {};
    if (!isObj(fileCfg)) throw invalid('(root)', fileCfg, `config file ${file} must hold a mapping`);
  }
  // Routing rules replace the defaults as a whole: merging two lists of rules by index would make no sense.
  const merged = mergeDeep(mergeDeep(mergeDeep(DEFAULT_CONFIG, fileCfg), envOverrides(env)), opts.overrides ?? {}) as Obj;
  const cfg = validateConfig(merged, env);
  const base = file ? resolve(file, '..') : process.cwd();
  cfg.data.dir = resolve(base, cfg.data.dir);
  cfg.delivery.folder = cfg.delivery.folder ? resolve(base, cfg.delivery.folder) : resolve(cfg.data.dir, 'outbox');
  // The default OHIF folder is where scripts/fetch-ohif puts it, inside radnode's own install.
  cfg.viewer.ohifDir = cfg.viewer.ohifDir ? resolve(base, cfg.viewer.ohifDir) : fileURLToPath(new URL('../../.cache/ohif/dist', import.meta.url));
  // The shipped models sit in radnode's own install, wherever the process was started from.
  cfg.inference.modelsDir = cfg.inference.modelsDir ? resolve(base, cfg.inference.modelsDir) : fileURLToPath(new URL('../../models', import.meta.url));
  cfg.detectors.modules = cfg.detectors.modules.map((m) => (m.startsWith('.') || m.startsWith('/') ? resolve(base, m) : m));
  return cfg;
}
