/**
 * The throwaway PostgreSQL server the store's PostgreSQL tests run against (test/helpers/postgres.ts).
 * No skip when PostgreSQL is missing: CI installs it, so a missing server must fail loudly here.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

describe('throwaway PostgreSQL server', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.remove();
  });

  it('serves the keygate database to superuser keygate on loopback, with the test settings', async () => {
    expect(server.url).toBe(`postgres://keygate@127.0.0.1:${server.port}/keygate`);
    const directory = path.dirname(server.dataDir);
    await withClient(server.url, async (client) => {
      const { rows } = await client.query<{ user: string; database: string; superuser: boolean }>(
        "SELECT current_user AS user, current_database() AS database, current_setting('is_superuser') = 'on' AS superuser",
      );
      expect(rows).toEqual([{ user: 'keygate', database: 'keygate', superuser: true }]);
      const setting = async (name: string) => (await client.query<{ value: string }>('SELECT current_setting($1) AS value', [name])).rows[0]?.value;
      expect(await setting('listen_addresses')).toBe('127.0.0.1');
      expect(await setting('port')).toBe(String(server.port));
      expect(await setting('unix_socket_directories')).toBe(path.join(directory, 'socket'));
      expect(await setting('fsync')).toBe('off');
      expect(await setting('max_connections')).toBe('200');
      expect(await setting('server_encoding')).toBe('UTF8');
      expect(await setting('data_directory')).toBe(server.dataDir);
    });
  });

  it('creates further databases, isolated from the first', async () => {
    await withClient(server.url, (client) => client.query('CREATE TABLE only_in_keygate (id integer)'));
    const otherUrl = await server.createDatabase('isolated_one');
    expect(otherUrl).toBe(`postgres://keygate@127.0.0.1:${server.port}/isolated_one`);
    await withClient(otherUrl, async (client) => {
      expect((await client.query<{ name: string }>('SELECT current_database() AS name')).rows[0]?.name).toBe('isolated_one');
      expect((await client.query("SELECT to_regclass('only_in_keygate') AS t")).rows[0]?.t).toBeNull();
    });
  });

  it('keeps its data across stop and start on the same port', async () => {
    await withClient(server.url, async (client) => {
      await client.query('CREATE TABLE survivors (id integer PRIMARY KEY, name text NOT NULL)');
      await client.query("INSERT INTO survivors VALUES (1, 'written before the stop'), (2, 'ünïcödé')");
    });
    const held = new pg.Client({ connectionString: server.url });
    await held.connect();
    held.on('error', () => undefined); // the fast shutdown terminates it

    await server.stop();
    await server.stop(); // already stopped: nothing to do
    await expect(withClient(server.url, (client) => client.query('SELECT 1'))).rejects.toThrow();
    await expect(server.createDatabase('while_stopped')).rejects.toThrow(/not running/);
    await held.end().catch(() => undefined);

    await server.start();
    await withClient(server.url, async (client) => {
      const { rows } = await client.query('SELECT id, name FROM survivors ORDER BY id');
      expect(rows).toEqual([
        { id: 1, name: 'written before the stop' },
        { id: 2, name: 'ünïcödé' },
      ]);
      await client.query("INSERT INTO survivors VALUES (3, 'written before the restart')");
    });

    await server.restart();
    await withClient(server.url, async (client) => {
      expect((await client.query('SELECT count(*)::int AS n FROM survivors')).rows[0]?.n).toBe(3);
    });
  });

  it('remove() stops the server and deletes its temp dir, and is safe to call twice', async () => {
    const directory = path.dirname(server.dataDir);
    expect(existsSync(server.logFile)).toBe(true);
    await server.remove();
    expect(existsSync(directory)).toBe(false);
    await expect(withClient(server.url, (client) => client.query('SELECT 1'))).rejects.toThrow();
    await server.remove();
    await expect(server.start()).rejects.toThrow(/removed/);
  });
});

describe('a second server at the same time', () => {
  it('gets its own port and directory', async () => {
    const [first, second] = await Promise.all([startPostgres(), startPostgres({ database: 'other' })]);
    try {
      expect(first.port).not.toBe(second.port);
      expect(path.dirname(first.dataDir)).not.toBe(path.dirname(second.dataDir));
      expect(second.url).toBe(`postgres://keygate@127.0.0.1:${second.port}/other`);
      await withClient(second.url, async (client) => {
        expect((await client.query<{ name: string }>('SELECT current_database() AS name')).rows[0]?.name).toBe('other');
      });
    } finally {
      await Promise.all([first.remove(), second.remove()]);
    }
  });
});
