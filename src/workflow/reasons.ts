import type { Code } from '../results/findings.ts';

/**
 * Coded "not processed" reasons for series (DESIGN §4 skipped[]). radnode's private scheme 99RADNODE, one code
 * each, so that worklists and audits can count them; meanings are what an operator reads.
 */
export const NOT_PROCESSED = {
  ownOutput: { scheme: '99RADNODE', value: 'RN-NP-OWN', meaning: "radnode's own output" },
  nonImage: { scheme: '99RADNODE', value: 'RN-NP-NONIMAGE', meaning: 'Not an image (SR, KO, PR, SEG or document)' },
  localizer: { scheme: '99RADNODE', value: 'RN-NP-LOCALIZER', meaning: 'Localizer image' },
  doseReport: { scheme: '99RADNODE', value: 'RN-NP-DOSE', meaning: 'Dose report or dose screenshot' },
  derived: { scheme: '99RADNODE', value: 'RN-NP-DERIVED', meaning: 'Derived or secondary image' },
  noRule: { scheme: '99RADNODE', value: 'RN-NP-NORULE', meaning: 'No routing rule matches the series' },
  notInstalled: { scheme: '99RADNODE', value: 'RN-NP-NODETECTOR', meaning: 'The routed detector is not installed' },
  tooFewImages: { scheme: '99RADNODE', value: 'RN-NP-FEWIMAGES', meaning: 'Too few images or slices' },
  sliceTooThick: { scheme: '99RADNODE', value: 'RN-NP-THICK', meaning: 'Slices too thick' },
  sliceTooThin: { scheme: '99RADNODE', value: 'RN-NP-THIN', meaning: 'Slices thinner than the detector takes' },
  outsidePopulation: { scheme: '99RADNODE', value: 'RN-NP-AGE', meaning: "Patient's age outside the model's trained population" },
  lateralView: { scheme: '99RADNODE', value: 'RN-NP-LATERAL', meaning: 'Lateral view; the detector reads frontal views only' },
  colourImage: { scheme: '99RADNODE', value: 'RN-NP-COLOUR', meaning: 'Colour image; the detector reads grayscale only' },
  forProcessing: { scheme: '99RADNODE', value: 'RN-NP-FORPROC', meaning: "'For processing' image; reads images for presentation only" },
  implant: { scheme: '99RADNODE', value: 'RN-NP-IMPLANT', meaning: 'Breast implant in view or displaced; implant views not read' },
  qualityControl: { scheme: '99RADNODE', value: 'RN-NP-QC', meaning: 'Calibration, quality-control or phantom image' },
  multiFrame: { scheme: '99RADNODE', value: 'RN-NP-MULTIFRAME', meaning: 'Tomosynthesis slices or projections; reads 2D views only' },
  workupView: { scheme: '99RADNODE', value: 'RN-NP-WORKUP', meaning: 'Spot, magnified, specimen or biopsy image; not a full view' },
  unreadable: { scheme: '99RADNODE', value: 'RN-NP-UNREADABLE', meaning: 'Image unreadable (malformed, undecodable or unsupported)' },
  declined: { scheme: '99RADNODE', value: 'RN-NP-DECLINED', meaning: 'The detector declined the series' },
  // CT (issue 7): what the series attributes or the slice geometry show only once the headers are read.
  enhancedCt: { scheme: '99RADNODE', value: 'RN-NP-ENHANCED', meaning: 'Enhanced (multi-frame) CT; reads single-frame CT slices only' },
  notCtImage: { scheme: '99RADNODE', value: 'RN-NP-NOTCTIMAGE', meaning: 'Not a CT image object (CT or Enhanced CT Image Storage)' },
  notAxial: { scheme: '99RADNODE', value: 'RN-NP-NOTAXIAL', meaning: 'Not an axial stack (reformat, oblique or mixed orientations)' },
  gantryTilt: { scheme: '99RADNODE', value: 'RN-NP-TILT', meaning: 'Gantry tilt not resolved (sheared volume)' },
  irregularSlices: { scheme: '99RADNODE', value: 'RN-NP-GAPS', meaning: 'Slices missing, duplicated or unevenly spaced' },
  missingGeometry: { scheme: '99RADNODE', value: 'RN-NP-NOGEOMETRY', meaning: 'No usable slice position or orientation' },
  notChest: { scheme: '99RADNODE', value: 'RN-NP-NOTCHEST', meaning: 'Body part is not the chest' },
  noLungs: { scheme: '99RADNODE', value: 'RN-NP-NOLUNGS', meaning: 'No lungs in the field of view' },
  otherSeriesPreferred: { scheme: '99RADNODE', value: 'RN-NP-PREFERRED', meaning: 'Another series of the study was preferred' },
} as const satisfies Record<string, Code>;
