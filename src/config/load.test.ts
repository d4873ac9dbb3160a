/**
 * loadConfig against the shipped example (config/radnode.example.yaml, both its Orthanc body and its commented vendor
 * variant), and the validation promise of DESIGN §6: every refusal names the key and the bad value, as a
 * RadnodeError RN_CONFIG_INVALID that the CLI turns into exit code 2.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { RadnodeError } from '../errors.ts';
import { DEFAULT_CONFIG } from './defaults.ts';
import { loadConfig } from './load.ts';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const EXAMPLE = join(REPO, 'config/radnode.example.yaml');
const SECRETS = {
  RADNODE_PUSH_PASSWORD: 'push-secret-1',
  RADNODE_OPERATOR_PASSWORD: 'op-secret-2',
  RADNODE_WORKLIST_TOKEN: 'worklist-token-0123456789',
  RADNODE_ORTHANC_PASSWORD: 'orthanc-secret-3',
};

const tmp = mkdtempSync(join(tmpdir(), 'radnode-config-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let fileNo = 0;
function writeYaml(value: unknown): string {
  const path = join(tmp, `cfg-${++fileNo}.yaml`);
  writeFileSync(path, typeof value === 'string' ? value : stringify(value));
  return path;
}

/** Runs fn, expects RN_CONFIG_INVALID, and returns the message for the caller's own checks. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RadnodeError);
    const e = err as RadnodeError;
    expect(e.code).toBe('RN_CONFIG_INVALID');
    expect(e.exitCode).toBe(2);
    return e.message;
  }
  throw new Error('expected the configuration to be refused');
}
/** The message names the key (`config key <key>:`) and shows the bad value. */
function expectRefused(fn: () => unknown, key: string, shownValue: string): string {
  const msg = refusal(fn);
  expect(msg).toContain(`config key ${key}:`);
  expect(msg).toContain(shownValue);
  return msg;
}
const withOverrides = (overrides: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => () => loadConfig({ env, overrides });

describe('config/radnode.example.yaml', () => {
  it('loads with its secrets from the environment, Orthanc push plus reconciliation poll', () => {
    const cfg = loadConfig({ file: EXAMPLE, env: SECRETS });
    expect(cfg.server.host).toBe('127.0.0.1');
    expect(cfg.server.port).toBe(8080);
    expect(cfg.server.users).toEqual([
      { username: 'orthanc', password: 'push-secret-1', roles: ['ingest'] },
      { username: 'operator', password: 'op-secret-2', roles: ['reader', 'operator'] },
    ]);
    expect(cfg.server.bearerTokens).toEqual([{ token: 'worklist-token-0123456789', roles: ['reader'] }]);
    expect(cfg.data.dir).toBe('/var/lib/radnode');
    expect(cfg.delivery.folder).toBe('/var/lib/radnode/outbox');
    expect(cfg.workflow.wholeStudySenders).toEqual(['orthanc']);
    expect(cfg.node).toMatchObject({ uidRoot: '1.2.826.0.1.3680043.10.1496', manufacturer: 'radnode', institutionName: 'Example Hospital' });
    expect(cfg.pacs).toEqual({
      kind: 'orthanc',
      url: 'http://127.0.0.1:8042/dicom-web',
      orthancUrl: 'http://127.0.0.1:8042',
      auth: { type: 'basic', username: 'radnode', password: 'orthanc-secret-3' },
      timeoutMs: 30000,
    });
    expect(cfg.delivery.mode).toBe('pacs');
    expect(cfg.poll).toEqual({ enabled: true, schedule: '0 */5 * * * *', source: 'qido', lookbackDays: 2, onlyRoutedModalities: true });
    expect(cfg.routing.rules.map((r) => r.detector)).toEqual(['cxr', 'mammo', 'ct']);
    expect(cfg.routing.rules[0].match.bodyPart).toEqual(['CHEST', 'THORAX', '']);
    expect(cfg.routing.rules[2].match).toMatchObject({ sliceThicknessMmMax: 3, minInstances: 40, seriesDescriptionExcludes: '(scout|topogram)' });
  });

  it('refuses to start when a secret it names is not in the environment, without showing the reference as a value', () => {
    const { RADNODE_ORTHANC_PASSWORD: _, ...missing } = SECRETS;
    const msg = expectRefused(() => loadConfig({ file: EXAMPLE, env: missing }), 'pacs.password', 'environment variable RADNODE_ORTHANC_PASSWORD is not set');
    expect(msg).toContain('[secret]');
  });

  it('its commented vendor DICOMweb variant loads once uncommented in place of the Orthanc sections', () => {
    const text = readFileSync(EXAMPLE, 'utf8');
    const block = /# --- vendor variant begin ---\n([\s\S]*?)# --- vendor variant end ---/.exec(text);
    expect(block).not.toBeNull();
    const variant = parseYaml(block![1].split('\n').map((l) => l.replace(/^# ?/, '')).join('\n')) as Record<string, unknown>;
    expect(Object.keys(variant).sort()).toEqual(['delivery', 'pacs', 'poll']);
    const base = parseYaml(text) as Record<string, Record<string, unknown>>;
    // As the comment says: drop Orthanc's push account and whole-study sender too.
    const server = { ...base.server, users: (base.server.users as { username: string }[]).filter((u) => u.username !== 'orthanc') };
    const file = writeYaml({ ...base, server, workflow: { ...base.workflow, wholeStudySenders: [] }, ...variant });
    const cfg = loadConfig({ file, env: { ...SECRETS, RADNODE_PACS_SECRET: 'vendor-secret' } });
    expect(cfg.pacs).toEqual({ kind: 'dicomweb', url: 'https://pacs.example.org/dicomweb', orthancUrl: undefined, auth: { type: 'basic', username: 'radnode-ai', password: 'vendor-secret' }, timeoutMs: 60000 });
    expect(cfg.delivery).toMatchObject({ mode: 'pacs', retractSuperseded: false, confirmTimeoutMs: 120000 });
    expect(cfg.poll).toMatchObject({ enabled: true, source: 'qido', schedule: '0 * * * * *' });
  });
});

describe('defaults', () => {
  it('need no file and no environment: no PACS, results to <data.dir>/outbox, loopback only, no auth', () => {
    const cfg = loadConfig({ env: {} });
    expect(cfg.pacs).toBeNull();
    expect(cfg.server).toEqual({ ...DEFAULT_CONFIG.server });
    expect(cfg.data.dir).toBe(resolve(process.cwd(), 'radnode-data'));
    expect(cfg.delivery.mode).toBe('folder');
    expect(cfg.delivery.folder).toBe(join(cfg.data.dir, 'outbox'));
    expect(cfg.poll.enabled).toBe(false);
    expect(cfg.routing.rules).toEqual(DEFAULT_CONFIG.routing.rules);
    expect(cfg.node.institutionName).toBeUndefined();
  });

  it('resolve relative paths in a file against the file’s folder', () => {
    const cfg = loadConfig({ file: writeYaml({ data: { dir: 'store' }, delivery: { folder: 'out' } }), env: {} });
    expect(cfg.data.dir).toBe(join(tmp, 'store'));
    expect(cfg.delivery.folder).toBe(join(tmp, 'out'));
  });
});

describe('environment overrides', () => {
  it('RADNODE_SERVER_PORT overrides the file, and command-line overrides win over both', () => {
    const file = writeYaml({ server: { port: 8081 } });
    expect(loadConfig({ file, env: {} }).server.port).toBe(8081);
    expect(loadConfig({ file, env: { RADNODE_SERVER_PORT: '9090' } }).server.port).toBe(9090);
    expect(loadConfig({ file, env: { RADNODE_SERVER_PORT: '9090' }, overrides: { server: { port: 9091 } } }).server.port).toBe(9091);
  });

  it('a non-numeric RADNODE_SERVER_PORT is refused naming server.port', () => {
    expect(refusal(() => loadConfig({ env: { RADNODE_SERVER_PORT: 'eighty' } }))).toContain('config key server.port:');
  });

  it('arrays take JSON: RADNODE_WORKFLOW_WHOLE_STUDY_SENDERS, RADNODE_DETECTORS_DISABLED, RADNODE_ROUTING_RULES', () => {
    const cfg = loadConfig({
      env: {
        RADNODE_WORKFLOW_WHOLE_STUDY_SENDERS: '["orthanc","modality-router"]',
        RADNODE_DETECTORS_DISABLED: '["mammo"]',
        RADNODE_ROUTING_RULES: JSON.stringify([{ detector: 'cxr', match: { modality: ['DX'] } }]),
      },
    });
    expect(cfg.workflow.wholeStudySenders).toEqual(['orthanc', 'modality-router']);
    expect(cfg.detectors.disabled).toEqual(['mammo']);
    expect(cfg.routing.rules).toEqual([{ detector: 'cxr', match: { modality: ['DX'] } }]);
  });

  it('an array variable that is not JSON is refused naming the variable and the key', () => {
    const msg = expectRefused(() => loadConfig({ env: { RADNODE_WORKFLOW_WHOLE_STUDY_SENDERS: 'orthanc' } }), 'workflow.wholeStudySenders', '"orthanc"');
    expect(msg).toContain('RADNODE_WORKFLOW_WHOLE_STUDY_SENDERS must be a JSON array');
  });

  it('booleans take true/false/1/0, anything else is refused', () => {
    expect(loadConfig({ env: { RADNODE_DELIVERY_RETRACT_SUPERSEDED: '0' } }).delivery.retractSuperseded).toBe(false);
    expectRefused(() => loadConfig({ env: { RADNODE_DELIVERY_RETRACT_SUPERSEDED: 'yes' } }), 'delivery.retractSuperseded', '"yes"');
  });

  it('RADNODE_PACS_* make a PACS section without a file', () => {
    const cfg = loadConfig({
      env: { RADNODE_PACS_URL: 'http://127.0.0.1:8042/dicom-web/', RADNODE_PACS_KIND: 'orthanc', RADNODE_PACS_TOKEN: 'tok', RADNODE_PACS_TIMEOUT_MS: '5000', RADNODE_DELIVERY_MODE: 'pacs' },
    });
    expect(cfg.pacs).toEqual({ kind: 'orthanc', url: 'http://127.0.0.1:8042/dicom-web', orthancUrl: 'http://127.0.0.1:8042', auth: { type: 'bearer', token: 'tok' }, timeoutMs: 5000 });
    expect(cfg.delivery.mode).toBe('pacs');
  });
});

describe('secrets', () => {
  it('file:PATH reads the file, trimmed', () => {
    const secret = join(tmp, 'token.txt');
    writeFileSync(secret, 'a-file-token-0123456789\n');
    const cfg = loadConfig({ env: {}, overrides: { server: { bearerTokens: [{ token: `file:${secret}`, roles: ['reader'] }] } } });
    expect(cfg.server.bearerTokens[0].token).toBe('a-file-token-0123456789');
  });

  it('an unreadable file: secret is refused naming the key', () => {
    expect(refusal(withOverrides({ pacs: { url: 'http://127.0.0.1:1/dicom-web', username: 'u', password: `file:${join(tmp, 'nope')}` } }))).toContain(
      'config key pacs.password: secret file cannot be read',
    );
  });

  it('a missing env: secret is refused naming the key and the variable', () => {
    expectRefused(withOverrides({ server: { users: [{ username: 'a', password: 'env:NOT_SET_ANYWHERE', roles: ['ingest'] }] } }), 'server.users[0].password', 'NOT_SET_ANYWHERE is not set');
  });

  it('a bearer token shorter than 16 characters is refused without showing it', () => {
    const msg = expectRefused(withOverrides({ server: { bearerTokens: [{ token: 'short', roles: ['reader'] }] } }), 'server.bearerTokens[0].token', 'at least 16 characters');
    expect(msg).not.toContain('short"');
  });
});

describe('validation names the key and the bad value', () => {
  it('bad port', () => {
    expectRefused(withOverrides({ server: { port: 70000 } }), 'server.port', '70000');
    expectRefused(withOverrides({ server: { port: 80.5 } }), 'server.port', '80.5');
  });

  it('bad uidRoot', () => {
    expectRefused(withOverrides({ node: { uidRoot: '1.2.03.4' } }), 'node.uidRoot', '"1.2.03.4"');
    expectRefused(withOverrides({ node: { uidRoot: '1.2.826.0.1.3680043.10.1496.123456789' } }), 'node.uidRoot', 'at most 32 characters');
  });

  it('node names longer than their DICOM VR (Station Name SH 16, the others LO 64) are refused', () => {
    expectRefused(withOverrides({ node: { stationName: 'RADNODE-CHEST-AI-01' } }), 'node.stationName', 'at most 16 characters');
    expectRefused(withOverrides({ node: { manufacturer: 'x'.repeat(65) } }), 'node.manufacturer', 'at most 64 characters');
  });

  it('unknown section', () => {
    expectRefused(withOverrides({ retention: { days: 30 } }), 'retention', 'unknown section');
  });

  it('viewer and results sections', () => {
    const pacs = { url: 'http://127.0.0.1:8042/dicom-web' };
    const cfg = loadConfig({ env: { RO: 'ro-secret' }, overrides: { pacs, viewer: { enabled: true, port: 9001, pacsUsername: 'viewer', pacsPassword: 'env:RO' } } });
    expect(cfg.viewer).toMatchObject({ enabled: true, host: '', port: 9001, pacsUsername: 'viewer', pacsPassword: 'ro-secret', pacsToken: '' });
    expect(cfg.viewer.ohifDir).toBe(join(REPO, '.cache/ohif/dist'));
    expect(cfg.results.trackingIdentifierStyle).toBe('cornerstone3D');
    expect(loadConfig({ env: { RADNODE_RESULTS_TRACKING_IDENTIFIER_STYLE: 'detector' } }).results.trackingIdentifierStyle).toBe('detector');
    expectRefused(withOverrides({ results: { trackingIdentifierStyle: 'ohif' } }), 'results.trackingIdentifierStyle', '"ohif"');
    expectRefused(withOverrides({ viewer: { enabled: true } }), 'viewer.enabled', 'needs a pacs section');
    expectRefused(withOverrides({ pacs, viewer: { enabled: true, port: 8080 } }), 'viewer.port', 'other than server.port');
    expectRefused(withOverrides({ viewer: { host: '0.0.0.0' } }), 'viewer.host', '127.0.0.1 only');
    expectRefused(withOverrides({ viewer: { prot: 1 } }), 'viewer.prot', 'unknown key');
    expectRefused(withOverrides({ pacs, viewer: { pacsUsername: 'viewer' } }), 'viewer.pacsPassword', 'password');
  });

  it('unknown key inside a section (a typo must not silently keep the default)', () => {
    expectRefused(withOverrides({ poll: { enable: true } }), 'poll.enable', 'unknown key');
    expectRefused(() => loadConfig({ file: writeYaml({ workflow: { quietSecond: 5 } }), env: {} }), 'workflow.quietSecond', 'unknown key');
  });

  it('bad routing condition', () => {
    const rules = [{ detector: 'cxr', match: { modalty: ['CR'] } }];
    const msg = expectRefused(withOverrides({ routing: { rules } }), 'routing.rules[0].match.modalty', '["CR"]');
    expect(msg).toContain('unknown condition');
    expectRefused(withOverrides({ routing: { rules: [{ detector: 'cxr', match: { modality: 'CR' } }] } }), 'routing.rules[0].match.modality', '"CR"');
    expectRefused(withOverrides({ routing: { rules: [{ detector: 'ct-lung', match: { minInstances: 0 } }] } }), 'routing.rules[0].match.minInstances', '0');
  });

  it('bad regex', () => {
    const msg = expectRefused(withOverrides({ routing: { rules: [{ detector: 'cxr', match: { seriesDescription: 'chest(' } }] } }), 'routing.rules[0].match.seriesDescription', '"chest("');
    expect(msg).toContain('regular expression');
  });

  it('pacs.url not http', () => {
    expectRefused(withOverrides({ pacs: { url: 'ftp://pacs.example.org/dicomweb' } }), 'pacs.url', '"ftp://pacs.example.org/dicomweb"');
    expectRefused(withOverrides({ pacs: { url: 'pacs.example.org' } }), 'pacs.url', '"pacs.example.org"');
  });

  it('non-loopback host without users or tokens', () => {
    const msg = expectRefused(withOverrides({ server: { host: '0.0.0.0' } }), 'server.host', '"0.0.0.0"');
    expect(msg).toContain('server.users or server.bearerTokens');
    // With a user it is allowed.
    expect(loadConfig({ env: {}, overrides: { server: { host: '0.0.0.0', users: [{ username: 'a', password: 'b', roles: ['ingest'] }] } } }).server.host).toBe('0.0.0.0');
  });

  it('delivery.mode pacs without a pacs section', () => {
    expectRefused(withOverrides({ delivery: { mode: 'pacs' } }), 'delivery.mode', '"pacs"');
  });

  it('poll.enabled without a pacs section, and orthanc-changes without pacs.kind orthanc', () => {
    expectRefused(withOverrides({ poll: { enabled: true } }), 'poll.enabled', 'true');
    const pacs = { url: 'http://127.0.0.1:8042/dicom-web' };
    expectRefused(withOverrides({ pacs, poll: { enabled: true, source: 'orthanc-changes' } }), 'poll.source', '"orthanc-changes"');
    expect(loadConfig({ env: {}, overrides: { pacs: { ...pacs, kind: 'orthanc' }, poll: { enabled: true, source: 'orthanc-changes' } } }).poll.source).toBe('orthanc-changes');
  });

  it('enumerations and roles', () => {
    expectRefused(withOverrides({ logging: { level: 'verbose' } }), 'logging.level', '"verbose"');
    expectRefused(withOverrides({ server: { users: [{ username: 'a', password: 'b', roles: ['admin'] }] } }), 'server.users[0].roles', '"admin"');
    expectRefused(withOverrides({ poll: { schedule: '* * *' } }), 'poll.schedule', '"* * *"');
  });

  it('a config file that is not a mapping, or not YAML, is refused', () => {
    expectRefused(() => loadConfig({ file: writeYaml('- a\n- b\n'), env: {} }), '(root)', 'must hold a mapping');
    try {
      loadConfig({ file: writeYaml('server: [unclosed\n'), env: {} });
      throw new Error('expected a parse error');
    } catch (err) {
      expect((err as RadnodeError).code).toBe('RN_CONFIG_UNREADABLE');
      expect((err as RadnodeError).exitCode).toBe(2);
    }
  });
});

describe('dimse section', () => {
  it('accepts known callers with per-caller settings and a destination', () => {
    const cfg = loadConfig({ env: {}, overrides: { dimse: { enabled: true, knownCallers: [{ aeTitle: 'PACS1', host: '10.0.0.5', quietSeconds: 5, detectors: ['cxr'] }, { aeTitle: 'CT01' }], destination: { aeTitle: 'PACS1', host: '10.0.0.5', port: 11112 } }, delivery: { mode: 'dimse' } } });
    expect(cfg.dimse.knownCallers).toEqual([{ aeTitle: 'PACS1', host: '10.0.0.5', quietSeconds: 5, detectors: ['cxr'] }, { aeTitle: 'CT01' }]);
    expect(cfg.delivery.mode).toBe('dimse');
    expect(loadConfig({ env: { RADNODE_DIMSE_KNOWN_CALLERS: '[{"aeTitle":"MOD1"}]', RADNODE_DIMSE_PORT: '4242' } }).dimse).toMatchObject({ knownCallers: [{ aeTitle: 'MOD1' }], port: 4242 });
  });
  it('refuses unknown caller keys, over-long AE titles and mode dimse without a destination', () => {
    expectRefused(withOverrides({ dimse: { knownCallers: [{ aeTitle: 'PACS1', quiet: 5 }] } }), 'dimse.knownCallers[0].quiet', '5');
    expectRefused(withOverrides({ dimse: { aeTitle: 'A_VERY_LONG_AE_TITLE_X' } }), 'dimse.aeTitle', 'A_VERY_LONG_AE_TITLE_X');
    expectRefused(withOverrides({ dimse: { destination: { aeTitle: 'P', host: '' } } }), 'dimse.destination.host', '""');
    expectRefused(withOverrides({ delivery: { mode: 'dimse' } }), 'delivery.mode', 'dimse');
    expectRefused(withOverrides({ dimse: { destination: { aeTitle: 'P', host: 'h', storageCommitment: true } } }), 'dimse.destination.storageCommitment', 'true');
  });
});

describe('docs/configuration.md', () => {
  const doc = readFileSync(join(REPO, 'docs/configuration.md'), 'utf8');
  it('documents every key of the defaults and the environment variable that overrides it', () => {
    const missing: string[] = [];
    const walk = (node: unknown, path: string[]) => {
      if (typeof node === 'object' && node !== null && !Array.isArray(node)) {
        for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
        return;
      }
      if (path[0] === 'pacs') return;
      const key = path.join('.');
      const env = 'RADNODE_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
      if (!doc.includes(`\`${key}\``)) missing.push(key);
      if (!doc.includes(env)) missing.push(env);
    };
    walk(DEFAULT_CONFIG, []);
    for (const k of ['node.institutionName', 'pacs.kind', 'pacs.url', 'pacs.orthancUrl', 'pacs.username', 'pacs.password', 'pacs.token', 'pacs.timeoutMs']) if (!doc.includes(`\`${k}\``)) missing.push(k);
    for (const v of ['RADNODE_NODE_INSTITUTION_NAME', 'RADNODE_PACS_URL', 'RADNODE_PACS_KIND', 'RADNODE_PACS_ORTHANC_URL', 'RADNODE_PACS_USERNAME', 'RADNODE_PACS_PASSWORD', 'RADNODE_PACS_TOKEN', 'RADNODE_PACS_TIMEOUT_MS'])
      if (!doc.includes(v)) missing.push(v);
    expect(missing).toEqual([]);
  });
});
