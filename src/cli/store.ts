/** Opens the shared store for one CLI command and always closes it, so the CLI never holds the database open. */
import { loadConfig, type Config } from '../config.js';
import { openStore, type Store } from '../store/db.js';
import type { CliIo } from './io.js';

export function withStore<T>(io: CliIo, run: (store: Store, config: Config) => T): T {
  const config = loadConfig(io.env);
  const store = openStore(config);
  try {
    return run(store, config);
  } finally {
    store.close();
  }
}
