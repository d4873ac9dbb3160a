import type { RadnodeConfig } from './types.ts';

/**
 * Embedded defaults: radnode starts with no PACS and no file. Results go to a local folder; nothing listens
 * beyond 127.0.0.1 until authentication is configured (DESIGN §6).
 */
export const DEFAULT_CONFIG: RadnodeConfig = {
  server: {
    host: '127.0.0.1',
    port: 8080,
    maxStowBytes: 4 * 1024 ** 3,
    users: [],
    bearerTokens: [],
  },
  data: { dir: './radnode-data', minFreeMb: 512, purgeAfterHours: 0 },
  node: {
    // A placeholder under Medical Connections' free UID root (1.2.826.0.1.3680043.10); a site registers its own
    // root (free at medicalconnections.co.uk or from its vendor) and sets node.uidRoot.
    uidRoot: '1.2.826.0.1.3680043.10.1496',
    manufacturer: 'radnode',
    modelName: 'radnode',
    stationName: 'RADNODE',
  },
  workflow: {
    quietSeconds: 60,
    wholeStudySenders: [],
    tickMs: 1000,
    maxAttempts: 6,
    backoffBaseMs: 5000,
    backoffMaxMs: 10 * 60 * 1000,
    leaseMs: 5 * 60 * 1000,
    thinSliceWaitMinutes: 0,
  },
  routing: {
    // Precedence is the order of the list: the first rule whose match holds names the detector for a series.
    rules: [
      { detector: 'cxr', match: { modality: ['CR', 'DX'], bodyPart: ['CHEST', 'THORAX', ''], imageTypeExcludes: ['LOCALIZER'] } },
      { detector: 'mammo', match: { modality: ['MG'] } },
      {
        detector: 'ct',
        match: { modality: ['CT'], imageTypeIncludes: ['AXIAL'], sliceThicknessMmMax: 3, minInstances: 40 },
      },
    ],
  },
  pacs: null,
  delivery: { mode: 'folder', folder: '', // empty: <data.dir>/outbox
     confirmTimeoutMs: 30_000, retractSuperseded: true },
  poll: { enabled: false, schedule: '*/30 * * * * *', source: 'qido', lookbackDays: 2, onlyRoutedModalities: true },
  detectors: { modules: [], disabled: [] },
  // One inference at a time with every core (DESIGN §3 Scheduling); a single graph rarely has parallel branches.
  inference: { modelsDir: '', intraOpThreads: 0, interOpThreads: 1, executionProviders: ['cpu'] },
  logging: { level: 'info' },
  // OHIF hydrates and draws only measurements named after its own tools (shared/notes/viewer.md).
  results: { trackingIdentifierStyle: 'cornerstone3D' },
  viewer: { enabled: false, host: '', port: 8081, ohifDir: '', pacsUsername: '', pacsPassword: '', pacsToken: '' },
  // DIMSE is off until a site names who may call it: the SCP only ever accepts the callers listed here.
  dimse: {
    enabled: false,
    host: '127.0.0.1',
    port: 11112,
    aeTitle: 'RADNODE',
    knownCallers: [],
    destination: { aeTitle: '', host: '', port: 104 },
    timeoutMs: 30_000,
  },
  // The built-in OHIF listens on its own port (DESIGN §6), on the host name the worklist page was loaded from.
  worklist: {
    viewerUrlPattern: 'http://{host}:{viewerPort}/viewer?StudyInstanceUIDs={study}',
    webhook: { url: '', secret: '', maxAttempts: 8, backoffBaseMs: 2000, backoffMaxMs: 5 * 60 * 1000, timeoutMs: 10_000 },
  },
};
