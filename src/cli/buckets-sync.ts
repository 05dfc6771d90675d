/**
 * `keygate buckets sync`: imports RunPod network volumes into the bucket registry (bucket name =
 * volume id, routed to the volume's datacenter). Registered buckets are left as they are, so a
 * sync never overrides an operator's explicit routing.
 */
import { loadConfig } from '../config.js';
import { openStore } from '../store/open.js';
import { RunpodVolumeDiscovery } from '../upstream/runpod.js';
import { expectPositionals, parseCommand } from './args.js';
import { CommandFailure, EXIT_OK } from './errors.js';
import type { CliIo } from './io.js';

export async function runBucketsSync(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, {}, 'keygate buckets --help');
  expectPositionals(parsed.positionals, [], 'keygate buckets --help');
  const config = loadConfig(io.env);
  const discovery = RunpodVolumeDiscovery.fromConfig(config);
  if (discovery === null) {
    throw new CommandFailure('Set RUNPOD_API_KEY (a RunPod API key with read access) so keygate can list your network volumes.');
  }
  let volumes;
  try {
    volumes = await discovery.fetchVolumes();
  } catch (error) {
    throw new CommandFailure(`Could not list RunPod network volumes: ${error instanceof Error ? error.message : String(error)}`);
  }
  const store = await openStore(config, { servesRequests: false });
  try {
    let added = 0;
    for (const volume of volumes) {
      const existing = await store.buckets.get(volume.id);
      if (existing) {
        io.stdout(`kept   ${volume.id} (already registered)\n`);
        continue;
      }
      await store.buckets.add({ name: volume.id, datacenter: volume.datacenter });
      added++;
      io.stdout(`added  ${volume.id} -> RunPod ${volume.datacenter}${volume.name ? ` (${volume.name})` : ''}\n`);
    }
    io.stdout(`${added} bucket${added === 1 ? '' : 's'} added, ${volumes.length - added} already registered.\n`);
    return EXIT_OK;
  } finally {
    await store.close();
  }
}
