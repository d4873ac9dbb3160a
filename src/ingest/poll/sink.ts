/**
 * What a poller needs from the rest of radnode. Pollers know nothing about SQL: the store implements this interface,
 * tests implement it in memory.
 */
export type PollSource = 'poll-qido' | 'poll-orthanc';

export type PollSink = {
  getCheckpoint(name: string): Promise<string | null>;
  setCheckpoint(name: string, value: string): Promise<void>;
  /** How many instances of the study radnode already holds. */
  knownInstanceCount(studyUID: string): Promise<number>;
  /** Stores one retrieved Part 10 instance (a re-sent instance is recognised by the store, not stored twice). */
  ingest(bytes: Uint8Array, origin: { source: PollSource; studyInstanceUID: string }): Promise<void>;
  /**
   * Optional: how many of radnode's own objects (SR, heatmap SCs) are in the PACS's copy of the study: delivered and
   * not retracted. A PACS counts them among the study's instances.
   */
  deliveredOwnCount?(studyUID: string): Promise<number>;
  /** Called after all of a study's wanted instances were ingested. */
  studyRetrieved?(studyUID: string): Promise<void>;
  /**
   * Optional: the SOP Instance UIDs radnode holds for the study. With it a poller retrieves exactly the instances that
   * are missing; without it, it falls back to comparing counts and lets the store drop what it already has.
   */
  knownInstances?(studyUID: string): Promise<ReadonlySet<string>>;
  /**
   * Optional: those of knownInstances whose files retention deleted. A pull that finds something new in the study
   * fetches them back with it, so that the job the new instances start can read the whole study; a study with
   * nothing new fetches nothing.
   */
  purgedInstances?(studyUID: string): Promise<ReadonlySet<string>>;
};
