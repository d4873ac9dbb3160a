/** The typed configuration every stage reads (DESIGN §6). Defaults and validation live in defaults.ts / load.ts. */

export type PacsAuth =
  | { type: 'none' }
  | { type: 'basic'; username: string; password: string }
  | { type: 'bearer'; token: string };

export type PacsConfig = {
  /** 'orthanc' adds the REST API (/changes, DELETE) next to DICOMweb; 'dicomweb' is any vendor PACS. */
  kind: 'dicomweb' | 'orthanc';
  /** DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web (no trailing slash). */
  url: string;
  /** Orthanc REST root (kind 'orthanc' only), e.g. http://127.0.0.1:8042. */
  orthancUrl?: string;
  auth: PacsAuth;
  timeoutMs: number;
};

/** A calling AE allowed to associate with radnode's Storage SCP, with its own workflow settings. */
export type DimseCaller = {
  aeTitle: string;
  /** When set, the association must come from this address too (an AE title alone is easily spoofed). */
  host?: string;
  /** Quiet period for studies this caller sends; absent: workflow.quietSeconds. */
  quietSeconds?: number;
  /** Detector ids allowed to run on studies this caller sends; absent: every enabled detector. */
  detectors?: string[];
};

/** A DICOM peer reached by DIMSE (C-STORE destination, C-FIND/C-MOVE source). */
export type DimsePeer = { aeTitle: string; host: string; port: number };

export type DimseConfig = {
  enabled: boolean;
  /** Listen address of the Storage SCP. */
  host: string;
  port: number;
  /** radnode's own AE title (called AE for the SCP, calling AE as SCU, C-MOVE destination). */
  aeTitle: string;
  knownCallers: DimseCaller[];
  /** delivery.mode 'dimse' sends to this peer (C-STORE, confirmed by an IMAGE-level C-FIND); aeTitle '' means none. */
  destination: DimsePeer;
  /** Connect/association/PDU timeout for SCU and SCP. */
  timeoutMs: number;
};

/** One routing rule: every condition that is present must hold; lists mean "any of". */
export type RoutingMatch = {
  modality?: string[];
  sopClassUID?: string[];
  /** Every listed value must appear in Image Type (e.g. ORIGINAL, PRIMARY). */
  imageTypeIncludes?: string[];
  /** None of the listed values may appear in Image Type (e.g. LOCALIZER, DERIVED). */
  imageTypeExcludes?: string[];
  bodyPart?: string[];
  viewPosition?: string[];
  sliceThicknessMmMax?: number;
  sliceThicknessMmMin?: number;
  /** Case-insensitive regular expression on Series Description. */
  seriesDescription?: string;
  /** Case-insensitive regular expression on Series Description that excludes the series. */
  seriesDescriptionExcludes?: string;
  minInstances?: number;
};

export type RoutingRule = { detector: string; match: RoutingMatch };

export type AuthUser = { username: string; password: string; roles: Role[] };
export type Role = 'ingest' | 'reader' | 'operator';

export type RadnodeConfig = {
  server: {
    host: string;
    port: number;
    /** Largest STOW-RS body accepted, in bytes. */
    maxStowBytes: number;
    /** Empty: no authentication, and radnode only listens on 127.0.0.1. */
    users: AuthUser[];
    bearerTokens: { token: string; roles: Role[] }[];
  };
  data: {
    dir: string;
    minFreeMb: number;
    /**
     * Instance files of a study are deleted this many hours after its last job settled (delivered, superseded or
     * cancelled; DESIGN §3), with the result files of its delivered jobs (not in shadow mode); 0 keeps them for
     * ever. The rows stay, so a re-sent copy is recognised and restored.
     */
    purgeAfterHours: number;
  };
  node: {
    uidRoot: string;
    manufacturer: string;
    modelName: string;
    institutionName?: string;
    stationName: string;
  };
  workflow: {
    /** A study is complete when no instance arrived for this long. */
    quietSeconds: number;
    /** Senders (by a label configured on their credentials or `X-Radnode-Sender`) that send whole studies: complete at end of request. */
    wholeStudySenders: string[];
    tickMs: number;
    maxAttempts: number;
    backoffBaseMs: number;
    backoffMaxMs: number;
    leaseMs: number;
    /**
     * How long a new job whose detector would rather have a better series (CT: none of 1.5 mm or thinner yet) waits
     * before it runs, so that a thin reconstruction sent a few minutes after the thick one is read first time. 0: run
     * at once (a later thin series still re-runs the job and supersedes its result).
     */
    thinSliceWaitMinutes: number;
  };
  routing: { rules: RoutingRule[] };
  pacs: PacsConfig | null;
  delivery: {
    /**
     * pacs: STOW to the configured PACS; dimse: C-STORE to dimse.destination; folder: write files to `folder`;
     * shadow: compute and record, send nothing.
     */
    mode: 'pacs' | 'dimse' | 'folder' | 'shadow';
    folder: string;
    /** How long QIDO may lag behind a STOW before the delivery counts as unconfirmed. */
    confirmTimeoutMs: number;
    /** Retract superseded heatmaps through Orthanc's REST DELETE (kind 'orthanc' only). */
    retractSuperseded: boolean;
  };
  poll: {
    enabled: boolean;
    /** node-cron expression (seconds field allowed). */
    schedule: string;
    /**
     * qido: QIDO-RS new studies since the checkpoint; orthanc-changes: Orthanc's /changes feed; dimse: C-FIND and
     * C-MOVE at dimse.destination (a PACS without DICOMweb).
     */
    source: 'qido' | 'orthanc-changes' | 'dimse';
    /** The reconciliation window (DESIGN §3): studies whose Study Date is within this many days are compared. */
    lookbackDays: number;
    /** Only series whose modality is routed are pulled. */
    onlyRoutedModalities: boolean;
  };
  detectors: {
    /** Extra detector modules (site plug-ins, test detectors): each exports `detector` or `detectors`. */
    modules: string[];
    /** Detector ids to disable. */
    disabled: string[];
  };
  /** Model registry and onnxruntime sessions (src/inference). */
  inference: {
    /** Folder of models/<id>/{model.onnx, manifest.json, CARD.md}; '' means the models folder shipped with radnode. */
    modelsDir: string;
    /** onnxruntime intra-op threads (one forward pass); 0: onnxruntime's default, one per core. */
    intraOpThreads: number;
    /** onnxruntime inter-op threads (parallel graph branches); 0: onnxruntime's default. */
    interOpThreads: number;
    /** ['cpu'], or ['cuda', 'cpu'] to use the CUDA execution provider when installed (else a warning, then CPU). */
    executionProviders: ('cpu' | 'cuda')[];
  };
  logging: { level: 'debug' | 'info' | 'warn' | 'error' | 'silent' };
  results: {
    /**
     * How SR measurement groups are named (src/results/objects.ts TrackingIdentifierStyle): 'cornerstone3D' (OHIF
     * tool names, the only ones OHIF hydrates and draws) or 'detector' (the finding's own id).
     */
    trackingIdentifierStyle: 'detector' | 'cornerstone3D';
  };
  /** The built-in OHIF viewer and its read-only DICOMweb proxy to `pacs`, on a port of their own (DESIGN §6). */
  viewer: {
    enabled: boolean;
    /** Empty: the same address as server.host. */
    host: string;
    port: number;
    /** The OHIF dist folder (scripts/fetch-ohif); empty: <radnode>/.cache/ohif/dist. */
    ohifDir: string;
    /** A read-only PACS credential for the proxy; all empty: the pacs section's own credential. */
    pacsUsername: string;
    pacsPassword: string;
    pacsToken: string;
  };
  /** The DICOM DIMSE gateway (issue 11): a Storage SCP, DIMSE delivery and a C-FIND/C-MOVE poller. */
  dimse: DimseConfig;
  /** The triage worklist page and its outgoing webhook for urgent results (issue 10). */
  worklist: {
    /**
     * Where a worklist row opens its study. Placeholders: {study} (Study Instance UID), {accession}, and for the
     * built-in viewer {host} (the host name the page was loaded from) and {viewerPort} (viewer.port).
     */
    viewerUrlPattern: string;
    webhook: {
      /** Empty: no webhook. */
      url: string;
      /** HMAC-SHA256 key for the X-Radnode-Signature header; required with url (env:/file: recommended). */
      secret: string;
      maxAttempts: number;
      backoffBaseMs: number;
      backoffMaxMs: number;
      timeoutMs: number;
    };
  };
};
