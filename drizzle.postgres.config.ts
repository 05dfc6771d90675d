/**
 * drizzle-kit configuration for the PostgreSQL store: `npm run db:generate:postgres` writes SQL
 * migrations for src/store/postgres/schema.ts into migrations/postgres/. Change both schemas together.
 */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/store/postgres/schema.ts',
  out: './migrations/postgres',
});
