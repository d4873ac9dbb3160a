import type { Detector } from './detector.ts';

/**
 * The detectors radnode ships. Each lives in its own folder and is added here once its model and card exist
 * (chest radiograph, mammography, CT lung nodules). radnode ships no placeholder: a series routed to a detector
 * that is not installed gets the coded reason RN-NP-NODETECTOR.
 */
export const BUILTIN_DETECTORS: Detector[] = [];
