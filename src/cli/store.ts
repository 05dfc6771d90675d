/** Opens the shared store for one CLI command and always closes it, so the CLI never holds the database open. */
import { loadConfig, type Config } from '../config.js';
import { openStore, type Store } from '../store/open.js';
import type { CliIo } from './io.js';

export async function withStore<T>(io: CliIo, run: (store: Store, config: Config) => T | Promise<T>): Promise<T> {
  const config = loadConfig(io.env);
  const store = await openStore(config, { servesRequests: false });
  try {
    return await run(store, config);
  } finally {
    await store.close();
  }
}
