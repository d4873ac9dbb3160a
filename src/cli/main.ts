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
  radnode validate FILE...                                 check result objects (our checks + dciodvfy)
  radnode inspect FILE [--pixels OUT]                      header summary, transfer syntax, pixel decode check

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
      case 'inspect': {
        const { inspectCommand } = await import('./inspect.ts');
        return await inspectCommand(rest, io);
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
