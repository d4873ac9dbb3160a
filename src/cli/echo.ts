/**
 * `radnode echo AE@host:port` (issue 11): for a PACS administrator setting up the link. Outbound: a C-ECHO from
 * radnode's AE title to the peer. Inbound: radnode cannot make the peer call, so it says whether its SCP would
 * accept that AE (dimse.knownCallers) and prints the entry the PACS needs to reach radnode; the administrator then
 * echoes from the PACS side.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.ts';
import { echo, parsePeer } from '../delivery/dimse.ts';
import { RadnodeError } from '../errors.ts';
import { findCaller } from '../ingest/dimse/scp.ts';

type Out = { out: (s: string) => void; err: (s: string) => void };

export async function echoCommand(args: string[], io: Out): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string' }, aet: { type: 'string' }, timeout: { type: 'string' } } });
  const peer = positionals.length === 1 ? parsePeer(positionals[0]!) : undefined;
  if (!peer) throw new RadnodeError('RN_USAGE', 'usage: radnode echo AE@host:port [--aet CALLING_AE] [--timeout MS] [--config FILE]');
  const config = loadConfig({ file: values.config });
  const callingAeTitle = values.aet ?? config.dimse.aeTitle;
  const timeoutMs = values.timeout !== undefined ? Number(values.timeout) : config.dimse.timeoutMs;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100) throw new RadnodeError('RN_USAGE', `--timeout must be an integer of at least 100 ms, got ${values.timeout}`);
  const ms = await echo({ peer, callingAeTitle, timeoutMs });
  io.out(`outbound: C-ECHO ${callingAeTitle} -> ${peer.aeTitle}@${peer.host}:${peer.port} succeeded in ${Math.round(ms)} ms`);
  const known = findCaller(config.dimse.knownCallers, peer.aeTitle, peer.host);
  if (!config.dimse.enabled) io.out('inbound: dimse.enabled is false: radnode accepts no association');
  else if (!known) io.out(`inbound: ${peer.aeTitle} from ${peer.host} is not in dimse.knownCallers: radnode would reject it (calling AE not recognized)`);
  else io.out(`inbound: ${peer.aeTitle} is a known caller; on the PACS, add radnode as AE ${config.dimse.aeTitle}, port ${config.dimse.port} (listening on ${config.dimse.host}), then echo it from there`);
  return 0;
}
