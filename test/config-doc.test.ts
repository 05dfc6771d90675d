/**
 * docs/configuration.md describes every environment variable keygate reads, and nothing else:
 * a variable added to the code without its line in the doc (or left in the doc after the code
 * stopped reading it) fails here.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const NAME = /\b(?:KEYGATE|RUNPOD)_[A-Z0-9_]*[A-Z0-9]\b/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    return statSync(full).isDirectory() ? sourceFiles(full) : full.endsWith('.ts') ? [full] : [];
  });
}

/** Variable names in the doc's tables: the first column of each row. */
function documented(): Set<string> {
  const doc = readFileSync(path.join(ROOT, 'docs/configuration.md'), 'utf8');
  const names = new Set<string>();
  for (const line of doc.split('\n')) {
    const first = /^\| ([^|]+) \|/.exec(line)?.[1];
    for (const match of first?.matchAll(NAME) ?? []) names.add(match[0]);
  }
  return names;
}

/** Every variable loadConfig reads, with every optional part configured so each branch reads. */
function readByLoadConfig(): Set<string> {
  const read = new Set<string>();
  const env: Record<string, string> = {
    KEYGATE_UPSTREAM_ENDPOINT: 'http://127.0.0.1:1',
    KEYGATE_UPSTREAM_ACCESS_KEY_ID: 'a',
    KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: 'b',
    RUNPOD_S3_ACCESS_KEY: 'c',
    RUNPOD_S3_SECRET_KEY: 'd',
    KEYGATE_RATE_LIMIT: '5',
  };
  loadConfig(
    new Proxy(env, {
      get(target, name) {
        if (typeof name === 'string') read.add(name);
        return target[name as string];
      },
    }),
  );
  return read;
}

/**
 * Names in src/ string literals (what the environment is indexed with, and what messages tell
 * operators to set) and process.env.NAME; identifiers such as RUNPOD_CAPABILITIES are constants.
 */
function namedInSources(): Set<string> {
  const named = new Set<string>();
  for (const file of sourceFiles(path.join(ROOT, 'src'))) {
    const code = readFileSync(file, 'utf8');
    for (const literal of code.matchAll(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`|process\.env\.[A-Z0-9_]+/g)) {
      // (Interpolated code in template literals is code, not text.)
      for (const match of literal[0].replace(/\$\{[^}]*\}/g, '').matchAll(NAME)) named.add(match[0]);
    }
  }
  return named;
}

describe('docs/configuration.md', () => {
  it('lists every variable the code reads or names, and nothing else', () => {
    const read = readByLoadConfig();
    const named = new Set([...namedInSources(), ...read]);
    const doc = documented();
    expect([...read].filter((name) => !doc.has(name)).sort(), 'read by loadConfig but not documented').toEqual([]);
    expect([...named].filter((name) => !doc.has(name)).sort(), 'named in src/ but not documented').toEqual([]);
    expect([...doc].filter((name) => !named.has(name)).sort(), 'documented but never read').toEqual([]);
  });
});
