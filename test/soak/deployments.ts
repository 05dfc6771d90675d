/**
 * What the soak runs against (run.ts drives either):
 * - one gateway on its own SQLite store; keys deleted through its admin API and through the CLI
 *   writing the same SQLite file;
 * - several gateway instances on one PostgreSQL store (a real throwaway server), in front of the
 *   same upstream; keys created through the instances in turn, deleted alternately through a
 *   rotating instance's admin API and through the CLI pointed at PostgreSQL (its own data dir).
 * Both stop whatever they started if a later step of the start fails.
 */
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { startPostgres } from '../helpers/postgres.js';
import type { SoakDeployment } from './run.js';
import { deleteKeyWithCli, deleteKeyWithCliOnPostgres, startS3rverProcess } from './support.js';
import { BUCKETS, ROLES, type RoleSpec } from './traffic.js';

/** Runs `start` with a list of undo steps; on failure undoes what was done, otherwise returns them as stop(). */
async function withCleanup<T>(start: (onStop: (step: () => Promise<unknown>) => void) => Promise<T>): Promise<T & { stop(): Promise<void> }> {
  const steps: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    // Last started, first stopped; one failing step does not keep the others from running.
    const errors: unknown[] = [];
    for (const step of steps.splice(0).reverse()) await step().catch((error: unknown) => errors.push(error));
    if (errors.length > 0) throw new AggregateError(errors, 'stopping the soak deployment failed');
  };
  try {
    return { ...(await start((step) => steps.push(step))), stop };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

function roleKeyInput(role: RoleSpec, generation: number) {
  return { name: `soak-${role.name}-g${generation}`, bucket: role.bucket ?? undefined, permissions: role.permissions };
}

async function initialKeys(createKey: SoakDeployment['createKey']): Promise<Map<string, CreatedKey>> {
  const keys = new Map<string, CreatedKey>();
  for (const role of ROLES) keys.set(role.name, await createKey(role, 0));
  return keys;
}

/** One gateway on its SQLite store (the soak's original mode). */
export function startSingleGateway(): Promise<SoakDeployment> {
  return withCleanup(async (onStop) => {
    const upstream = await startS3rverProcess();
    onStop(() => upstream.stop());
    for (const bucket of BUCKETS) await upstream.createBucket(bucket);
    const gateway = await startGateway(upstreamEnv(upstream));
    onStop(() => gateway.stop());
    const createKey = (role: RoleSpec, generation: number) => gateway.createKey(roleKeyInput(role, generation));
    return {
      instances: [gateway],
      upstream,
      createKey,
      async deleteKey(accessKeyId, method) {
        await (method === 'cli' ? deleteKeyWithCli(gateway, accessKeyId) : gateway.deleteKey(accessKeyId));
        return method;
      },
      initialKeys: await initialKeys(createKey),
      unusedKey: await gateway.createKey({ name: 'soak-never-used', permissions: ['read'] }),
    };
  });
}

/** `count` gateway instances on one PostgreSQL store, one s3rver upstream. */
export function startSharedStoreInstances(count: number): Promise<SoakDeployment> {
  return withCleanup(async (onStop) => {
    const upstream = await startS3rverProcess();
    onStop(() => upstream.stop());
    const postgres = await startPostgres();
    onStop(() => postgres.remove());
    for (const bucket of BUCKETS) await upstream.createBucket(bucket);
    const env = { ...upstreamEnv(upstream), KEYGATE_DATABASE_URL: postgres.url };
    // All at once, as a deployment's replicas come up: they open (and migrate) the fresh store together.
    const started = await Promise.allSettled(Array.from({ length: count }, () => startGateway(env)));
    const instances: Gateway[] = [];
    for (const result of started) {
      if (result.status === 'fulfilled') {
        instances.push(result.value);
        onStop(() => result.value.stop());
      }
    }
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    // startGateway gives every instance the same master key; the CLI needs it too.
    const store = { databaseUrl: postgres.url, masterKey: instances[0]!.env.KEYGATE_MASTER_KEY! };

    let created = 0;
    let adminDeletions = 0;
    const createKey = (role: RoleSpec, generation: number) => instances[created++ % count]!.createKey(roleKeyInput(role, generation));
    return {
      instances,
      upstream,
      createKey,
      async deleteKey(accessKeyId, method) {
        if (method === 'cli') {
          await deleteKeyWithCliOnPostgres(store, accessKeyId);
          return 'cli on PostgreSQL';
        }
        const instance = adminDeletions++ % count;
        await instances[instance]!.deleteKey(accessKeyId);
        return `admin-api of instance ${instance + 1}`;
      },
      initialKeys: await initialKeys(createKey),
      unusedKey: await instances[count - 1]!.createKey({ name: 'soak-never-used', permissions: ['read'] }),
    };
  });
}
