import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { adminTokenHashPath, prepareAdminToken, verifierForHash, verifierForToken } from '../../src/http/admin-token.js';
import { configFor, makeTempDirs } from '../helpers/keygate-cli.js';

const dirs = makeTempDirs();
afterEach(() => dirs.cleanup());

describe('admin token', () => {
  it('uses KEYGATE_ADMIN_TOKEN and writes nothing', () => {
    const config = configFor(dirs.make(), { KEYGATE_ADMIN_TOKEN: 'configured-token-0123456789' });
    const announced: string[] = [];
    const verify = prepareAdminToken(config, { announce: (t) => announced.push(t) });
    expect(verify('configured-token-0123456789')).toBe(true);
    expect(verify('configured-token-012345678')).toBe(false);
    expect(verify('configured-token-01234567890')).toBe(false);
    expect(verify('')).toBe(false);
    expect(announced).toEqual([]);
    expect(existsSync(adminTokenHashPath(config.dataDir))).toBe(false);
  });

  it('generates a token once, announces it once, and stores only its hash (0600)', () => {
    const config = configFor(dirs.make());
    const announced: string[] = [];
    const verify = prepareAdminToken(config, { announce: (t) => announced.push(t) });
    expect(announced).toHaveLength(1);
    const token = /^ {2}([A-Za-z0-9_-]{43})$/m.exec(announced[0]!)?.[1];
    expect(token).toBeDefined();
    expect(announced[0]).toMatch(/shown only this once; save it now/);
    expect(verify(token!)).toBe(true);
    expect(verify(token!.slice(1))).toBe(false);

    const file = adminTokenHashPath(config.dataDir);
    const stored = readFileSync(file, 'utf8');
    expect(stored).not.toContain(token);
    expect(stored.trim()).toBe(createHash('sha256').update(token!).digest('hex'));
    expect(statSync(file).mode & 0o777).toBe(0o600);

    // Next start: same token works, nothing printed.
    const again = prepareAdminToken(config, { announce: (t) => announced.push(t) });
    expect(announced).toHaveLength(1);
    expect(again(token!)).toBe(true);
  });

  it('reports a damaged hash file instead of silently replacing it', () => {
    const config = configFor(dirs.make());
    writeFileSync(adminTokenHashPath(config.dataDir), 'garbage\n');
    expect(() => prepareAdminToken(config, { announce: () => {} })).toThrow(ConfigError);
    expect(() => prepareAdminToken(config, { announce: () => {} })).toThrow(/delete the file/);
  });

  it('verifiers compare whole tokens', () => {
    const byToken = verifierForToken('abc');
    const byHash = verifierForHash(createHash('sha256').update('abc').digest());
    for (const verify of [byToken, byHash]) {
      expect(verify('abc')).toBe(true);
      expect(verify('abcd')).toBe(false);
      expect(verify('ab')).toBe(false);
      expect(verify('ABC')).toBe(false);
    }
    expect(() => verifierForHash(Buffer.alloc(16))).toThrow(/32 bytes/);
  });
});
