/**
 * The whole project type-checks (TypeScript strict, server and worklist page): vitest runs sources through esbuild,
 * which strips types without checking them, so without this a type error would land unseen.
 */
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/paths.ts';

it('npm run typecheck passes', () => {
  const r = spawnSync('npm', ['run', '-s', 'typecheck'], { cwd: REPO_ROOT, encoding: 'utf8' });
  expect(r.stdout + r.stderr).not.toMatch(/error TS\d+/);
  expect(r.status).toBe(0);
}, 180_000);
