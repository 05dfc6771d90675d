import type pg from 'pg';

/**
 * A connection whose server went away emits 'error': an idle one on the pool, one in use on the
 * client itself (pg-pool removes its own listener while a client is checked out). Unheard, that
 * event would end the process; the query in progress fails on its own, and the pool replaces the
 * connection on next use.
 */
export function quietOnConnectionErrors(pool: pg.Pool): void {
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
}
