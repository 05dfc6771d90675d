/**
 * Builds dist/ once before the suites run: integration tests start the gateway the way it ships
 * (`node dist/cli/main.js serve`), so its memory and startup are those of the real artifact.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): void {
  const root = path.resolve(import.meta.dirname, '..');
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
}
