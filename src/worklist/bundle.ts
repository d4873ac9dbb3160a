import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { RadnodeError } from '../errors.ts';

export type PageAssets = { html: Buffer; js: Buffer; css: Buffer };

const here = (f: string) => fileURLToPath(new URL(`./page/${f}`, import.meta.url));

/**
 * Bundles the worklist page in memory with esbuild's API: plain TypeScript, HTML and CSS from src/worklist/page,
 * nothing fetched at run time. Built when radnode starts rather than by a separate build step: radnode already runs
 * its TypeScript through tsx, which is a runtime dependency and runs this same esbuild, so bundling here adds no
 * new runtime code, and a page built from the running source can never be stale (a dist/ folder could be).
 * esbuild is listed in dependencies, pinned to the version tsx brings, so this import never rests on hoisting.
 */
export async function buildWorklistPage(): Promise<PageAssets> {
  try {
    const out = await build({
      entryPoints: [here('app.ts')],
      bundle: true,
      write: false,
      format: 'iife',
      platform: 'browser',
      target: ['chrome100', 'firefox100', 'safari15'],
      minify: true,
      sourcemap: false,
      logLevel: 'silent',
      legalComments: 'none',
    });
    const js = out.outputFiles[0];
    if (!js) throw new Error('esbuild produced no output');
    return { html: await readFile(here('index.html')), js: Buffer.from(js.contents), css: await readFile(here('app.css')) };
  } catch (err) {
    throw new RadnodeError('RN_WORKLIST_PAGE_BUILD_FAILED', `the worklist page could not be bundled: ${(err as Error).message}`, { cause: err });
  }
}
