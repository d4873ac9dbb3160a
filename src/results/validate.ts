/**
 * `radnode validate`: radnode's own readable checks of its result objects, plus the verdict of independent
 * validators when they are installed. dciodvfy checks the IOD (modules, types, VRs) but no TID 1500 content rule;
 * pixelmed's DicomSRValidator checks templates but misses missing mandatory rows and always exits 0; neither knows
 * OHIF's display rules (toolchain.md §4, peers.md §3). So the checks here cover what both miss: the mandatory
 * TID 1500 rows, what OHIF needs to show a measurement (and what makes it fail: a group without an image region),
 * references, IHE AIR provenance, and the heatmap SC rules of DESIGN §1.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RadnodeError } from '../errors.ts';
import { num, readPart10, seq, str, strs, type DicomDataset } from './dicom-io.ts';
import { SOP_CLASS } from './modules.ts';
import { DCM, SCT } from './sr/codes.ts';
import type { ContentItem } from './sr/content-items.ts';
import { decodeDocumentContent, decodeCode, sameCode } from './sr/decode.ts';
import { hasImageRegion } from './sr/templates/tid1500.ts';

export type ValidationReport = { errors: string[]; warnings: string[] };
export type FileValidationReport = { file: string } & ValidationReport;
export type ValidateOptions = {
  /** Run dciodvfy when it is on PATH (default true). */
  dciodvfy?: boolean;
  /** Run pixelmed's DicomSRValidator on SRs when installed (default false: about 7–12 s and 1 GB per file). */
  pixelmed?: boolean;
};

const SR_CLASSES = new Set(['1.2.840.10008.5.1.4.1.1.88.33', '1.2.840.10008.5.1.4.1.1.88.34', '1.2.840.10008.5.1.4.1.1.88.22']);
const SC_CLASSES = new Set(['1.2.840.10008.5.1.4.1.1.7', SOP_CLASS.multiframeTrueColorSC]);
/** OHIF renders these SCOORD graphic types (extensions/cornerstone-dicom-sr/src/constants/scoordTypes.js). */
const OHIF_GRAPHIC_TYPES = new Set(['POINT', 'MULTIPOINT', 'POLYLINE', 'CIRCLE', 'ELLIPSE']);
const POINT_COUNT: Record<string, (n: number) => boolean> = {
  POINT: (n) => n === 1,
  MULTIPOINT: (n) => n >= 1,
  POLYLINE: (n) => n >= 2,
  CIRCLE: (n) => n === 2,
  ELLIPSE: (n) => n === 4,
  POLYGON: (n) => n >= 3,
  ELLIPSOID: (n) => n === 6,
};
const UID = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$/;
/** DESIGN §1: the heatmap SC's long side is capped at 2048 pixels. */
export const MAX_HEATMAP_SIDE = 2048;

class Findings {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  error(m: string): void {
    this.errors.push(m);
  }
  warn(m: string): void {
    this.warnings.push(m);
  }
  require(ok: boolean, m: string): void {
    if (!ok) this.error(m);
  }
}

function present(ds: DicomDataset, keyword: string): boolean {
  return Object.prototype.hasOwnProperty.call(ds, keyword);
}

function checkCommon(ds: DicomDataset, f: Findings): void {
  for (const k of ['SOPInstanceUID', 'StudyInstanceUID', 'SeriesInstanceUID']) {
    const v = str(ds, k);
    f.require(v !== undefined && UID.test(v) && v.length <= 64, `${k} is missing or not a valid UID (PS3.5 §9.1)`);
  }
  // PS3.3 §C.7.1.1/§C.7.2.1 Type 2: present, possibly empty. Without them an archive files the object under a new patient.
  for (const k of ['PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex', 'StudyDate', 'StudyTime', 'ReferringPhysicianName', 'StudyID', 'AccessionNumber']) {
    f.require(present(ds, k), `${k} is missing (Type 2, Patient/General Study module)`);
  }
  f.require(str(ds, 'Modality') !== undefined, 'Modality is missing');
  f.require(present(ds, 'SeriesNumber'), 'SeriesNumber is missing');
  f.require(str(ds, 'Manufacturer') !== undefined, 'Manufacturer is missing (General Equipment; radnode\'s loop guard reads it)');
  const ce = seq(ds, 'ContributingEquipmentSequence');
  const algo = ce.find((i) => {
    const p = decodeCode(seq(i, 'PurposeOfReferenceCodeSequence')[0]);
    return p?.value === 'Newcode1' && p.scheme === '99IHE';
  });
  if (!algo) {
    f.error('IHE AIR: no Contributing Equipment item with Purpose of Reference (Newcode1, 99IHE, "Processing Algorithm")');
  } else {
    for (const k of ['Manufacturer', 'ManufacturerModelName', 'SoftwareVersions', 'DeviceUID']) {
      f.require(str(algo, k) !== undefined, `IHE AIR: the Processing Algorithm item lacks ${k}`);
    }
  }
}

function walk(item: ContentItem, path: string, visit: (i: ContentItem, p: string) => void): void {
  visit(item, path);
  (item.children ?? []).forEach((c, n) => walk(c, `${path}.${n + 1}`, visit));
}

function label(i: ContentItem): string {
  return i.concept ? `${i.valueType} (${i.concept.value},${i.concept.scheme},"${i.concept.meaning}")` : i.valueType;
}

function checkSr(ds: DicomDataset, f: Findings): void {
  f.require(str(ds, 'Modality') === 'SR', 'Modality must be SR');
  f.require(['COMPLETE', 'PARTIAL'].includes(str(ds, 'CompletionFlag') ?? ''), 'CompletionFlag is missing or invalid (Type 1, SR Document General)');
  const verification = str(ds, 'VerificationFlag');
  f.require(verification !== undefined, 'VerificationFlag is missing (Type 1, SR Document General)');
  if (verification && verification !== 'UNVERIFIED') f.warn(`VerificationFlag is ${verification}: an algorithm's result is UNVERIFIED (IHE AIR)`);
  f.require(str(ds, 'ContentDate') !== undefined && str(ds, 'ContentTime') !== undefined, 'ContentDate/ContentTime are missing');

  const root = decodeDocumentContent(ds);
  if (root.valueType !== 'CONTAINER') return f.error('the root content item is not a CONTAINER');
  // TID 1500 row 1; OHIF refuses any other root (getSopClassHandlerModule.ts).
  if (!sameCode(root.concept, DCM.ImagingMeasurementReport)) return f.error(`root concept is ${label(root)}, not (126000, DCM, "Imaging Measurement Report")`);
  // OHIF's generateToolState requires TemplateIdentifier 1500 (cornerstone adapters MeasurementReport.ts).
  f.require(root.templateId === '1500', 'ContentTemplateSequence does not name TID 1500 (DCMR)');

  const top = root.children ?? [];
  const find = (c: typeof DCM.ImageLibrary) => top.filter((i) => sameCode(i.concept, c));
  f.require(find(DCM.LanguageOfContentItemAndDescendants).length === 1, 'TID 1500 row 2: Language of Content Item and Descendants is missing');
  f.require(find(DCM.ObserverType).length >= 1 || top.some((i) => i.relationship === 'HAS OBS CONTEXT'), 'TID 1500 row 3: no observer context');
  f.require(find(DCM.ProcedureReported).length >= 1, 'TID 1500 row 4: Procedure reported is missing');
  const library = find(DCM.ImageLibrary)[0];
  f.require(library !== undefined, 'TID 1500 row 5: Image Library is missing (OHIF dereferences it)');
  const measurements = find(DCM.ImagingMeasurements)[0];
  const qualitative = find(DCM.QualitativeEvaluations)[0];
  f.require(measurements !== undefined || qualitative !== undefined, 'TID 1500: neither Imaging Measurements nor Qualitative Evaluations is present');
  // Row 7 and rows 13–14 are 1-n: a present container is not empty.
  if (measurements) f.require((measurements.children ?? []).length > 0, 'TID 1500 row 7: Imaging Measurements has no measurement group');
  if (qualitative) {
    const q = qualitative.children ?? [];
    f.require(q.length > 0, 'TID 1500 rows 13–14: Qualitative Evaluations is empty');
    q.forEach((i, n) => {
      // Rows 13 (CODE) and 14 (TEXT) only: a NUM here, such as a score, belongs in a measurement group.
      if (i.valueType !== 'CODE' && i.valueType !== 'TEXT') f.error(`qualitative evaluation ${n + 1}: ${label(i)} is not a CODE or TEXT (TID 1500 rows 13–14)`);
      else if (i.relationship !== 'CONTAINS') f.error(`qualitative evaluation ${n + 1}: relationship ${i.relationship ?? '(none)'}, TID 1500 rows 13–14 are CONTAINS`);
    });
  }

  // References: every image the content names must be in the evidence (PS3.3 §C.17.2.3) and, for OHIF, in the library.
  const evidence = new Set<string>();
  for (const study of seq(ds, 'CurrentRequestedProcedureEvidenceSequence')) {
    for (const series of seq(study, 'ReferencedSeriesSequence')) {
      for (const sop of seq(series, 'ReferencedSOPSequence')) evidence.add(str(sop, 'ReferencedSOPInstanceUID') ?? '');
    }
  }
  const libraryImages = new Set<string>();
  if (library) walk(library, 'library', (i) => (i.valueType === 'IMAGE' ? libraryImages.add(i.sopInstanceUID) : undefined));

  const trackingUids = new Map<string, string>();
  (measurements?.children ?? []).forEach((g, n) => {
    const where = `measurement group ${n + 1}`;
    if (g.valueType !== 'CONTAINER' || !sameCode(g.concept, DCM.MeasurementGroup)) return f.warn(`${where}: not a (125007, DCM, "Measurement Group") container`);
    const items = g.children ?? [];
    const tid = items.find((i) => sameCode(i.concept, DCM.TrackingIdentifier));
    const tuid = items.find((i) => sameCode(i.concept, DCM.TrackingUniqueIdentifier));
    // OHIF reads both unconditionally and throws without the UID (getSopClassHandlerModule.ts `_getMeasurements`).
    f.require(tid?.valueType === 'TEXT', `${where}: Tracking Identifier (112039) TEXT is missing`);
    if (tuid?.valueType !== 'UIDREF') f.error(`${where}: Tracking Unique Identifier (112040) UIDREF is missing`);
    else if (trackingUids.has(tuid.uid)) f.warn(`${where}: shares its Tracking Unique Identifier with ${trackingUids.get(tuid.uid)}; OHIF merges them into one measurement`);
    else trackingUids.set(tuid.uid, where);
    // OHIF 3.13.2 gives such a group `coords: []` and then fails the whole viewer route reading coords[0]
    // (getSopClassHandlerModule.ts, _checkIfCanAddMeasurementsToDisplaySet); see sr/templates/tid1500.ts.
    if (!hasImageRegion(g)) f.error(`${where}: no SCOORD/SCOORD3D, in the group or INFERRED FROM by a NUM; OHIF 3.13.2 fails the whole viewer on it`);
    const graphics = items.filter((i) => i.valueType === 'SCOORD' || i.valueType === 'SCOORD3D');
    if (graphics[0]?.valueType === 'SCOORD3D' && graphics.some((i) => i.valueType === 'SCOORD')) {
      f.warn(`${where}: SCOORD3D comes before the SCOORD; OHIF draws the first graphic item (issue 5081)`);
    }
  });

  walk(root, '1', (i, p) => {
    const at = `content item ${p} ${label(i)}`;
    if (i.valueType === 'NUM') {
      f.require(Number.isFinite(i.value), `${at}: Measured Value Sequence has no numeric value`);
      f.require(i.unit.value !== '', `${at}: Measurement Units Code Sequence is missing`);
    }
    if (i.valueType === 'CODE') f.require(i.code.value !== '' && i.code.meaning !== '', `${at}: Concept Code Sequence is missing or incomplete`);
    if (i.valueType === 'UIDREF') f.require(UID.test(i.uid), `${at}: invalid UID`);
    if (i.valueType === 'SCOORD' || i.valueType === 'SCOORD3D') {
      const dim = i.valueType === 'SCOORD' ? 2 : 3;
      const ok = POINT_COUNT[i.graphicType];
      f.require(i.data.length % dim === 0 && ok !== undefined && ok(i.data.length / dim), `${at}: ${i.graphicType} with ${i.data.length / dim} points`);
      f.require(i.data.every(Number.isFinite), `${at}: Graphic Data has non-finite values`);
    }
    if (i.valueType === 'SCOORD') {
      if (!OHIF_GRAPHIC_TYPES.has(i.graphicType)) f.warn(`${at}: OHIF does not render graphic type ${i.graphicType}`);
      if (i.graphicType === 'ELLIPSE' && i.data.length === 8) {
        const [x1, y1, x2, y2] = i.data;
        if (x1 !== x2 && y1 !== y2) f.warn(`${at}: oblique ellipse; OHIF renders only axis-aligned ellipses`);
      }
      const img = (i.children ?? []).find((c) => c.valueType === 'IMAGE');
      if (!img || img.valueType !== 'IMAGE' || img.relationship !== 'SELECTED FROM') {
        f.error(`${at}: no IMAGE child with relationship SELECTED FROM (PS3.3 §C.18.6; OHIF needs it)`);
      } else {
        f.require(UID.test(img.sopClassUID) && UID.test(img.sopInstanceUID), `${at}: the IMAGE reference lacks its SOP class or instance UID`);
        f.require(evidence.has(img.sopInstanceUID), `${at}: image ${img.sopInstanceUID} is not in Current Requested Procedure Evidence`);
        if (!libraryImages.has(img.sopInstanceUID)) f.warn(`${at}: image ${img.sopInstanceUID} is not in the Image Library`);
      }
    }
    if (i.valueType === 'SCOORD3D') f.require(UID.test(i.frameOfReferenceUID), `${at}: Referenced Frame of Reference UID is missing`);
    if (i.valueType === 'IMAGE' && i.sopInstanceUID && !evidence.has(i.sopInstanceUID)) f.error(`${at}: image ${i.sopInstanceUID} is not in Current Requested Procedure Evidence`);
  });
  const site = (measurements?.children ?? []).flatMap((g) => g.children ?? []).find((i) => sameCode(i.concept, SCT.FindingSite));
  if (site && site.relationship !== 'HAS CONCEPT MOD') f.warn('Finding Site should be HAS CONCEPT MOD (TID 1419)');
}

function checkSc(ds: DicomDataset, f: Findings): void {
  // DESIGN §1: hanging protocols and detectors must never take the heatmap for a source image.
  f.require(str(ds, 'Modality') === 'OT', `Modality is ${str(ds, 'Modality')}, radnode heatmaps are OT`);
  const imageType = strs(ds, 'ImageType');
  f.require(imageType[0] === 'DERIVED' && imageType[1] === 'SECONDARY', `ImageType is ${imageType.join('\\')}, expected DERIVED\\SECONDARY`);
  f.require(str(ds, 'BurnedInAnnotation') === 'YES', 'BurnedInAnnotation must be YES: the label and outlines are burned in');
  f.require(str(ds, 'ConversionType') !== undefined, 'ConversionType is missing (Type 1, SC Equipment)');
  f.require(num(ds, 'SamplesPerPixel') === 3 && str(ds, 'PhotometricInterpretation') === 'RGB', 'a heatmap is true colour: SamplesPerPixel 3, RGB');
  f.require(num(ds, 'BitsAllocated') === 8 && num(ds, 'BitsStored') === 8 && num(ds, 'HighBit') === 7, 'a true colour SC has 8 bits per sample');
  const rows = num(ds, 'Rows') ?? 0;
  const cols = num(ds, 'Columns') ?? 0;
  f.require(Math.max(rows, cols) <= MAX_HEATMAP_SIDE, `long side ${Math.max(rows, cols)} exceeds ${MAX_HEATMAP_SIDE}`);
  const frames = num(ds, 'NumberOfFrames') ?? 1;
  const pd = ds.PixelData;
  const pixelBytes = Array.isArray(pd) && pd[0] instanceof ArrayBuffer ? pd[0].byteLength : pd instanceof ArrayBuffer ? pd.byteLength : 0;
  const expected = rows * cols * 3 * frames;
  f.require(pixelBytes === expected + (expected % 2), `Pixel Data has ${pixelBytes} bytes, expected ${expected + (expected % 2)}`);
  const sources = seq(ds, 'SourceImageSequence');
  f.require(sources.length >= 1, 'Source Image Sequence is missing: the heatmap must name its source');
  for (const s of sources) f.require(str(s, 'ReferencedSOPInstanceUID') !== undefined, 'a Source Image Sequence item lacks its Referenced SOP Instance UID');
  // DESIGN §1: the picture is not registered to the patient.
  f.require(!present(ds, 'FrameOfReferenceUID'), 'a heatmap SC must not carry a Frame of Reference');
}

/** radnode's own checks on one object's bytes. */
export function checkResultObject(bytes: Uint8Array): ValidationReport {
  const f = new Findings();
  let ds: DicomDataset;
  try {
    ds = readPart10(bytes).dataset;
  } catch (e) {
    return { errors: [`not a readable DICOM Part 10 object${e instanceof RadnodeError ? '' : ''}`], warnings: [] };
  }
  const sopClass = str(ds, 'SOPClassUID') ?? '';
  checkCommon(ds, f);
  if (SR_CLASSES.has(sopClass)) checkSr(ds, f);
  else if (SC_CLASSES.has(sopClass)) checkSc(ds, f);
  else f.error(`SOP Class ${sopClass || '(none)'} is not one radnode writes (Comprehensive 3D SR or Secondary Capture)`);
  return { errors: f.errors, warnings: f.warnings };
}

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    p.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    p.on('error', () => resolve(out));
    p.on('close', () => resolve(out));
  });
}

/** dciodvfy writes everything to stderr; its verdict is the `Error -` lines (orthanc.md, dciodvfy section). */
async function dciodvfy(path: string): Promise<ValidationReport> {
  const out = await run('dciodvfy', [path]);
  const lines = out.split('\n');
  return {
    errors: lines.filter((l) => l.startsWith('Error -')).map((l) => `dciodvfy: ${l.slice(8)}`),
    warnings: lines.filter((l) => l.startsWith('Warning -')).map((l) => `dciodvfy: ${l.slice(10)}`),
  };
}

const PIXELMED_JAR = '/usr/share/java/pixelmed.jar';

/** pixelmed always exits 0: its verdict is the `Error:` lines (toolchain.md §4, with the JDK 17 XPath limits lifted). */
async function pixelmed(path: string): Promise<ValidationReport> {
  const out = await run('java', [
    '-Djdk.xml.xpathExprGrpLimit=0',
    '-Djdk.xml.xpathExprOpLimit=0',
    '-Djdk.xml.xpathTotalOpLimit=0',
    '-cp',
    PIXELMED_JAR,
    'com.pixelmed.validate.DicomSRValidator',
    path,
  ]);
  const lines = out.split('\n');
  return {
    errors: lines.filter((l) => l.startsWith('Error:')).map((l) => `pixelmed: ${l.slice(6).trim()}`),
    warnings: lines.filter((l) => l.startsWith('Warning:')).map((l) => `pixelmed: ${l.slice(8).trim()}`),
  };
}

async function validateOnDisk(path: string, bytes: Uint8Array, options: ValidateOptions): Promise<ValidationReport> {
  const own = checkResultObject(bytes);
  const report: ValidationReport = { errors: [...own.errors], warnings: [...own.warnings] };
  if ((options.dciodvfy ?? true) && onPath('dciodvfy')) {
    const d = await dciodvfy(path);
    report.errors.push(...d.errors);
    report.warnings.push(...d.warnings);
  }
  if (options.pixelmed && onPath('java')) {
    const sopClass = str(readPart10(bytes, { untilPixelData: true }).dataset, 'SOPClassUID') ?? '';
    if (SR_CLASSES.has(sopClass)) {
      const p = await pixelmed(path);
      report.errors.push(...p.errors);
      report.warnings.push(...p.warnings);
    }
  }
  return report;
}

/** Own checks plus dciodvfy (and pixelmed on request) on one object held in memory. */
export async function validateResultObject(bytes: Uint8Array, options: ValidateOptions = {}): Promise<ValidationReport> {
  const dir = await mkdtemp(join(tmpdir(), 'radnode-validate-'));
  try {
    const path = join(dir, 'object.dcm');
    await writeFile(path, bytes);
    return await validateOnDisk(path, bytes, options);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `radnode validate FILE...`: one report per file; a file that cannot be read is an error, not an exception. */
export async function validateFiles(paths: string[], options: ValidateOptions = {}): Promise<FileValidationReport[]> {
  const reports: FileValidationReport[] = [];
  for (const file of paths) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch {
      reports.push({ file, errors: ['cannot read the file'], warnings: [] });
      continue;
    }
    reports.push({ file, ...(await validateOnDisk(file, bytes, options)) });
  }
  return reports;
}
