import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { jobView } from '../api/app.ts';
import { loadConfig } from '../config/load.ts';
import type { RadnodeConfig } from '../config/types.ts';
import { asRadnodeError, RadnodeError } from '../errors.ts';
import { startNode } from '../serve.ts';
import { SqliteStore } from '../store/store.ts';
import type { JobState } from '../store/types.ts';

const USAGE = `radnode — DICOMweb AI node

Usage:
  radnode serve [--config FILE] [--port N] [--data DIR]   start the node (default port 8080, data ./radnode-data)
  radnode jobs list [--state S] [--study UID] [--json]     list jobs
  radnode jobs retry ID                                    retry a failed or cancelled job
  radnode jobs cancel ID                                   cancel a job
  radnode analyze PATH... --out DIR [--detector ID] [--json]
                                                           run the whole pipeline on local files; objects + summary.json in DIR
  radnode models list [--json]                             models: id, version, detector, routing hints, sha256 check
  radnode models verify                                    full start-up check of every model (exit 1 if any is refused)
  radnode validate FILE...                                 check result objects (our checks + dciodvfy)
  radnode inspect FILE [--pixels OUT]                      header summary, transfer syntax, pixel decode check
  radnode echo AE@host:port [--aet AE]                     C-ECHO a DICOM peer; says whether radnode would accept it back

Common options: --config FILE (or RADNODE_CONFIG), --data DIR, --help.
Exit codes: 0 success, 1 failure, 2 bad usage or configuration.`;

type Out = { out: (s: string) => void; err: (s: string) => void };
const defaultOut: Out = { out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n') };

function configFrom(values: { config?: string; port?: string; data?: string }): RadnodeConfig {
  const overrides: Record<string, unknown> = {};
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RadnodeError('RN_USAGE', `--port must be an integer between 0 and 65535, got ${values.port}`);
    overrides.server = { port };
  }
  if (values.data !== undefined) overrides.data = { dir: values.data };
  return loadConfig({ file: values.config, overrides });
}

async function serve(args: string[], io: Out): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, port: { type: 'string' }, data: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) return io.out(USAGE), 0;
  const config = configFrom(values);
  const node = await startNode(config);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  node.log.info('radnode stopping');
  await node.stop();
  return 0;
}

async function jobs(args: string[], io: Out): Promise<number> {
  const [verb, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true,
    options: { config: { type: 'string' }, data: { type: 'string' }, state: { type: 'string' }, study: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } },
  });
  if (values.help || !verb) return io.out(USAGE), verb ? 0 : 2;
  const config = configFrom(values);
  // The CLI works on the store directly (SQLite WAL allows it beside a running node), so an operator can act
  // while the daemon is down too.
  const store = SqliteStore.open(join(config.data.dir, 'radnode.sqlite'));
  try {
    if (verb === 'list') {
      const list = (await store.listJobs({ state: values.state as JobState | undefined, study: values.study })).map(jobView);
      if (values.json) io.out(JSON.stringify({ jobs: list }, null, 2));
      else {
        io.out(['id', 'state', 'detector', 'attempts', 'priority', 'reason', 'study'].join('\t'));
        for (const j of list) io.out([j.id, j.state, j.detector, j.attempts, j.priority ?? '', j.reason?.code ?? '', j.study].join('\t'));
      }
      return 0;
    }
    if (verb === 'retry' || verb === 'cancel') {
      const id = Number(positionals[0]);
      if (!Number.isInteger(id)) throw new RadnodeError('RN_USAGE', `radnode jobs ${verb} needs a job id, got ${positionals[0] ?? 'nothing'}`);
      const job = verb === 'retry' ? await store.retryJob(id, 'cli') : await store.cancelJob(id, 'cli');
      io.out(`job ${job.id}: ${job.state}`);
      return 0;
    }
    throw new RadnodeError('RN_USAGE', `unknown jobs verb ${verb} (list, retry, cancel)`);
  } finally {
    store.close();
  }
}

async function validate(args: string[], io: Out): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { help: { type: 'boolean' } } });
  if (values.help) return io.out(USAGE), 0;
  if (positionals.length === 0) throw new RadnodeError('RN_USAGE', 'radnode validate needs at least one FILE');
  const { validateFiles } = await import('../results/validate.ts');
  const reports = await validateFiles(positionals);
  let bad = 0;
  for (const r of reports) {
    io.out(`${r.file}: ${r.errors.length ? 'INVALID' : 'ok'}`);
    for (const e of r.errors) io.out(`  error: ${e}`);
    for (const w of r.warnings) io.out(`  warning: ${w}`);
    if (r.errors.length) bad++;
  }
  return bad ? 1 : 0;
}

/** A one-line progress bar on stderr, for runs long enough to wonder about (and only on a terminal). */
function progressBar(io: Out, total: number): ((p: { phase: string; done: number; total: number }) => void) | undefined {
  if (!process.stderr.isTTY || total < 5) return undefined;
  return (p) => {
    const width = 30;
    const filled = p.total ? Math.round((p.done / p.total) * width) : 0;
    process.stderr.write(`\r${p.phase.padEnd(6)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total}` + (p.phase === 'run' && p.done === p.total ? '\n' : ''));
  };
}

async function analyzeCommand(args: string[], io: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: { out: { type: 'string' }, detector: { type: 'string' }, json: { type: 'boolean' }, config: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) return io.out(USAGE), 0;
  if (positionals.length === 0) throw new RadnodeError('RN_USAGE', 'radnode analyze needs at least one PATH (files or folders)');
  if (!values.out) throw new RadnodeError('RN_USAGE', 'radnode analyze needs --out DIR');
  const config = configFrom(values);
  const { analyze, formatSummary } = await import('../analyze.ts');
  const { createLogger } = await import('../log.ts');
  const summary = await analyze(positionals, config, {
    out: values.out, detector: values.detector,
    // Logs would interleave with the table: only warnings and worse, on stderr via the logger's own stream.
    log: createLogger(values.json ? 'silent' : 'error', { service: 'radnode-analyze' }, (line) => process.stderr.write(line + '\n')),
    onProgress: progressBar(io, positionals.length),
  });
  if (values.json) io.out(JSON.stringify(summary, null, 2));
  else io.out(formatSummary(summary, values.out));
  const failed = summary.results.some((r) => r.error) || summary.problems.length > 0;
  return failed ? 1 : 0;
}

async function modelsCommand(args: string[], io: Out): Promise<number> {
  const [verb, ...rest] = args;
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } } });
  if (values.help || !verb) return io.out(USAGE), verb ? 0 : 2;
  const config = configFrom(values);
  const { checkModels } = await import('../inference/registry.ts');
  if (verb === 'list') {
    const { models, problems } = await checkModels(config.inference.modelsDir);
    const rows = [
      ...models.map((m) => ({ id: m.manifest.id, version: m.manifest.version, detector: m.manifest.detector, routing: m.manifest.routing ?? {}, sha256Ok: true, dir: m.dir })),
      ...problems.map((p) => ({ id: p.source.split('/').pop() ?? p.source, version: '', detector: '', routing: {}, sha256Ok: false, dir: p.source, problem: p.detail })),
    ];
    if (values.json) io.out(JSON.stringify({ modelsDir: config.inference.modelsDir, models: rows }, null, 2));
    else {
      io.out(['id', 'version', 'detector', 'routing', 'sha256'].join('\t'));
      for (const r of rows) io.out([r.id, r.version, r.detector, Object.entries(r.routing).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('|') : v}`).join(' '), r.sha256Ok ? 'ok' : 'REFUSED'].join('\t'));
      for (const p of problems) io.err(`refused: ${p.code}: ${p.detail}`);
    }
    return 0;
  }
  if (verb === 'verify') {
    const { startBuiltinDetectors } = await import('../detectors/index.ts');
    const { createLogger } = await import('../log.ts');
    const b = await startBuiltinDetectors(config.inference, createLogger('warn', { service: 'radnode-models' }));
    await b.runtime.terminate();
    for (const m of b.models) io.out(`ok: ${m.manifest.id} ${m.manifest.version} (${m.manifest.detector}) ${m.path} on ${m.session.provider}`);
    for (const p of b.problems) io.out(`REFUSED: ${p.code}: ${p.detail}`);
    if (b.models.length === 0 && b.problems.length === 0) io.out(`no models in ${config.inference.modelsDir}`);
    return b.problems.length ? 1 : 0;
  }
  throw new RadnodeError('RN_USAGE', `unknown models verb ${verb} (list, verify)`);
}

export async function main(argv: string[], io: Out = defaultOut): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest, io);
      case 'jobs':
        return await jobs(rest, io);
      case 'validate':
        return await validate(rest, io);
      case 'analyze':
        return await analyzeCommand(rest, io);
      case 'models':
        return await modelsCommand(rest, io);
      case 'inspect': {
        const { inspectCommand } = await import('./inspect.ts');
        return await inspectCommand(rest, io);
      }
      case 'echo': {
        const { echoCommand } = await import('./echo.ts');
        return await echoCommand(rest, io);
      }
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new RadnodeError('RN_USAGE', `unknown command ${command}`);
    }
  } catch (err) {
    // node:util parseArgs throws TypeErrors with codes like ERR_PARSE_ARGS_UNKNOWN_OPTION for bad flags.
    const code = (err as { code?: string })?.code;
    const e = typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS') ? new RadnodeError('RN_USAGE', (err as Error).message) : asRadnodeError(err);
    io.err(`radnode: ${e.code}: ${e.message}`);
    return e.exitCode;
  }
}
