// Entry of the inference worker thread. Loader hooks registered by bin/radnode.js (tsx) do not reach worker
// threads on Node 20, so the worker registers tsx itself before importing its TypeScript source.
import { register } from 'tsx/esm/api';
register();
await import('./worker.ts');
