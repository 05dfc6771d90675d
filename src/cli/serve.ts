/** `keygate serve`: runs until SIGINT/SIGTERM, then shuts the listeners down cleanly. */
import { loadConfig } from '../config.js';
import { tuneHeapForStreaming } from '../heap-tuning.js';
import { startServer } from '../server.js';
import { expectPositionals, parseCommand } from './args.js';
import { EXIT_OK } from './errors.js';
import type { CliIo } from './io.js';

export async function runServe(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, {}, 'keygate serve --help');
  expectPositionals(parsed.positionals, [], 'keygate serve --help');
  const config = loadConfig(io.env);
  tuneHeapForStreaming();
  const server = await startServer(config, { announce: (text) => io.stdout(text) });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  io.stdout(`keygate: ${signal} received, shutting down\n`);
  await server.close();
  return EXIT_OK;
}
