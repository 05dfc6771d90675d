/**
 * Test helpers for the foundation: throwaway data dirs, configs pointing at them, and the real CLI
 * run as a child process (through tsx, exactly as `npm run keygate` does).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config.js';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const CLI_ENTRY = path.join(REPO_ROOT, 'src/cli/main.ts');
export const TEST_MASTER_KEY_HEX = '3a'.repeat(32);

/** A fresh directory under the OS temp dir; `cleanup()` removes every one made so far. */
export function makeTempDirs() {
  const made: string[] = [];
  return {
    make(prefix = 'keygate-test-'): string {
      const dir = mkdtempSync(path.join(tmpdir(), prefix));
      made.push(dir);
      return dir;
    },
    cleanup(): void {
      for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A Config on `dataDir` built through the real loader (no hand-made objects). */
export function configFor(dataDir: string, env: Record<string, string> = {}): Config {
  return loadConfig({ KEYGATE_DATA_DIR: dataDir, ...env });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `keygate <args>` in a child process with a minimal environment plus `env`. */
export function runCliProcess(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keygate ${args.join(' ')} timed out:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export { freePort } from './ports.js';
