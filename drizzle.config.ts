/** drizzle-kit configuration: `npm run db:generate` writes SQL migrations for src/store/schema.ts into migrations/. */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'sqlite',
  schema: './src/store/schema.ts',
  out: './migrations',
});
