#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's ESM loader: one code path for the CLI, tests and benchmarks.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
