import type { DetectorResult } from './findings.ts';

/** Who made the result objects: General Equipment / Contributing Equipment (IHE AIR) and the UID root. */
export type NodeIdentity = {
  uidRoot: string;
  manufacturer: string;
  modelName: string;
  softwareVersion: string;
  institutionName?: string;
  stationName?: string;
};

/** A source instance as stored by radnode; writers read headers and pixels from `path`. */
export type SourceInstance = {
  path: string;
  sopInstanceUID: string;
  sopClassUID: string;
  seriesInstanceUID: string;
};

export type ResultObjectKind = 'sr' | 'heatmap-sc';

/** One DICOM object radnode delivers: bytes are written once, stored, and re-sent unchanged. */
export type ResultObject = {
  kind: ResultObjectKind;
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  sopClassUID: string;
  instanceNumber: number;
  /** Part 10 bytes. */
  bytes: Uint8Array;
  /** What confirmation compares with the PACS copy: `ContentDate ContentTime` as written. */
  fingerprint: string;
};

/** A previously delivered SR that the new one supersedes (Predecessor Documents Sequence). */
export type PredecessorRef = {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  sopClassUID: string;
};

export type WriteContext = {
  node: NodeIdentity;
  /** Frozen at the job's first run so that a re-run writes identical bytes (DESIGN §3). */
  contentDateTime: Date;
  /** Hash of (sorted inputs with content hashes, model sha256, writer version): the seed of every output UID. */
  inputKey: string;
  /** SR Instance Number: 1 for the first result of a (study, detector), +1 for each superseding one. */
  srInstanceNumber: number;
  predecessor?: PredecessorRef;
  /** How the SR names its measurement groups; defaults to `{ trackingIdentifierStyle: 'detector' }`. */
  srOptions?: SrOptions;
  /**
   * The time zone of the copied Study Date/Time (timezoneOf in modules.ts), which radnode's own dates and times
   * follow; absent: UTC, declared '+0000'.
   */
  timezone?: SourceTimezone;
};

/** `attribute`: the source's Timezone Offset From UTC, copied; absent when the source declares none. */
export type SourceTimezone = { offsetMinutes: number; attribute?: string };

/**
 * `detector`: Tracking Identifier = the finding's own trackingId (readable in any viewer).
 * `cornerstone3D`: Tracking Identifier = an OHIF tool name (`Cornerstone3DTools@^0.1.0:<Tool>`), the only kind OHIF
 * hydrates into editable measurements (cornerstone adapters cornerstone3DTag.js, isRehydratable.ts); the finding's
 * trackingId is then kept in a private TEXT row so it still reads back.
 */
export type TrackingIdentifierStyle = 'detector' | 'cornerstone3D';
export type SrOptions = { trackingIdentifierStyle?: TrackingIdentifierStyle };

export type ResultWriter = (result: DetectorResult, sources: SourceInstance[], ctx: WriteContext) => Promise<ResultObject[]>;
