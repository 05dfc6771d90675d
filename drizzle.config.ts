/**
 * drizzle-kit configuration for the SQLite store: `npm run db:generate` writes SQL migrations for
 * src/store/schema.ts into migrations/sqlite/ (the PostgreSQL store: drizzle.postgres.config.ts).
 */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'sqlite',
  schema: './src/store/schema.ts',
  out: './migrations/sqlite',
});
