/**
 * GET /metrics on the admin listener: Prometheus text format, behind the same bearer token as the
 * admin API (Prometheus sends it with `authorization: { credentials: <token> }` in a scrape config).
 */
import { Hono } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { AdminTokenVerifier } from './admin-token.js';

export const METRICS_PATH = '/metrics';

export function createMetricsApp(metrics: GatewayMetrics, verifyAdminToken: AdminTokenVerifier): Hono {
  const app = new Hono();
  const unauthorized = { error: 'unauthorized', detail: 'Missing or invalid API key' };
  app.use(
    METRICS_PATH,
    bearerAuth({
      verifyToken: (token) => verifyAdminToken(token),
      noAuthenticationHeader: { message: unauthorized },
      invalidAuthenticationHeader: { message: unauthorized },
      invalidToken: { message: unauthorized },
    }),
  );
  app.get(METRICS_PATH, async (c) => {
    const body = await metrics.registry.metrics();
    return c.body(body, 200, { 'content-type': metrics.registry.contentType });
  });
  return app;
}
