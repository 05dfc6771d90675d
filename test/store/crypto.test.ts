import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { generateAccessKeyId, generateKeyPair, generateSecretAccessKey, isAccessKeyId, isSecretAccessKey } from '../../src/crypto/keygen.js';
import { loadMasterKey, masterKeyPath } from '../../src/crypto/master-key.js';
import { SealError, sealSecret, unsealSecret } from '../../src/crypto/seal.js';
import { readOrCreateSecretFile } from '../../src/data-dir.js';
import { configFor, makeTempDirs } from '../helpers/keygate-cli.js';

const dirs = makeTempDirs();
afterEach(() => dirs.cleanup());

describe('key generation', () => {
  it('produces rs_ak_<tag>_<40 hex> ids and rs_sk_<tag>_<64 hex> secrets', () => {
    const { accessKeyId, secretAccessKey } = generateKeyPair('live');
    expect(accessKeyId).toMatch(/^rs_ak_live_[0-9a-f]{40}$/);
    expect(secretAccessKey).toMatch(/^rs_sk_live_[0-9a-f]{64}$/);
    expect(generateAccessKeyId('t3st')).toMatch(/^rs_ak_t3st_[0-9a-f]{40}$/);
    expect(generateSecretAccessKey('t3st')).toMatch(/^rs_sk_t3st_[0-9a-f]{64}$/);
  });

  it('never repeats (randomness sanity check)', () => {
    const ids = new Set(Array.from({ length: 500 }, () => generateAccessKeyId('live')));
    const secrets = new Set(Array.from({ length: 500 }, () => generateSecretAccessKey('live')));
    expect(ids.size).toBe(500);
    expect(secrets.size).toBe(500);
  });

  it('refuses tags the id validator would reject', () => {
    expect(() => generateAccessKeyId('Live')).toThrow(/lowercase/);
    expect(() => generateSecretAccessKey('')).toThrow(/lowercase/);
  });

  it('validates the access key id format', () => {
    const id = generateAccessKeyId('live');
    expect(isAccessKeyId(id)).toBe(true);
    expect(isAccessKeyId(generateAccessKeyId('other'))).toBe(true);
    for (const bad of [
      '',
      id.toUpperCase(),
      `${id}0`,
      id.slice(0, -1),
      id.replace('rs_ak_', 'rs_sk_'),
      id.replace('_live_', '__'),
      `${id}\n`,
      'AKIAIOSFODNN7EXAMPLE',
    ]) {
      expect(isAccessKeyId(bad), bad).toBe(false);
    }
    expect(isSecretAccessKey(generateSecretAccessKey('live'))).toBe(true);
    expect(isSecretAccessKey(id)).toBe(false);
  });
});

describe('sealing', () => {
  const masterKey = Buffer.alloc(32, 7);
  const id = 'rs_ak_live_' + 'a'.repeat(40);
  const secret = 'rs_sk_live_' + 'b'.repeat(64);

  it('round-trips and uses the v1:<iv>:<ct>:<tag> format', () => {
    const sealed = sealSecret(masterKey, id, secret);
    const parts = sealed.split(':');
    expect(parts).toHaveLength(4);
    expect(parts[0]).toBe('v1');
    expect(Buffer.from(parts[1]!, 'base64')).toHaveLength(12);
    expect(Buffer.from(parts[3]!, 'base64')).toHaveLength(16);
    expect(sealed).not.toContain(secret);
    expect(sealed).not.toContain('b'.repeat(16));
    expect(unsealSecret(masterKey, id, sealed)).toBe(secret);
  });

  it('uses a fresh IV for every seal', () => {
    const a = sealSecret(masterKey, id, secret);
    const b = sealSecret(masterKey, id, secret);
    expect(a.split(':')[1]).not.toBe(b.split(':')[1]);
    expect(a).not.toBe(b);
  });

  it('rejects another master key', () => {
    const sealed = sealSecret(masterKey, id, secret);
    expect(() => unsealSecret(Buffer.alloc(32, 8), id, sealed)).toThrow(SealError);
  });

  it('binds the blob to its access key id (no swapping between rows)', () => {
    const sealed = sealSecret(masterKey, id, secret);
    expect(() => unsealSecret(masterKey, 'rs_ak_live_' + 'c'.repeat(40), sealed)).toThrow(SealError);
  });

  it('rejects every single-bit change in iv, ciphertext and tag', () => {
    const sealed = sealSecret(masterKey, id, secret);
    const [version, ...fields] = sealed.split(':') as [string, string, string, string];
    let attempts = 0;
    for (let field = 0; field < 3; field++) {
      const bytes = Buffer.from(fields[field]!, 'base64');
      for (let byte = 0; byte < bytes.length; byte += 3) {
        const tampered = Buffer.from(bytes);
        tampered[byte]! ^= 0x01;
        const copy = [...fields];
        copy[field] = tampered.toString('base64');
        expect(() => unsealSecret(masterKey, id, [version, ...copy].join(':'))).toThrow(SealError);
        attempts++;
      }
    }
    expect(attempts).toBeGreaterThan(20);
  });

  it('rejects malformed and unknown-version values', () => {
    const sealed = sealSecret(masterKey, id, secret);
    const [, iv, ct, tag] = sealed.split(':');
    for (const bad of [
      '',
      'v1',
      `v2:${iv}:${ct}:${tag}`,
      `v1:${iv}:${ct}`,
      `v1:${iv}:${ct}:${tag}:x`,
      `v1:${iv}!:${ct}:${tag}`,
      `v1:${iv}:${ct}:${tag!.slice(4)}`,
    ]) {
      expect(() => unsealSecret(masterKey, id, bad), bad).toThrow(SealError);
    }
  });

  it('insists on a 32-byte master key', () => {
    expect(() => sealSecret(Buffer.alloc(16), id, secret)).toThrow(/32 bytes/);
  });
});

describe('master key', () => {
  it('prefers KEYGATE_MASTER_KEY and writes no file', () => {
    const dataDir = path.join(dirs.make(), 'data');
    const config = configFor(dataDir, { KEYGATE_MASTER_KEY: '5c'.repeat(32) });
    expect(loadMasterKey(config)).toEqual(Buffer.alloc(32, 0x5c));
    expect(() => statSync(masterKeyPath(dataDir))).toThrow();
  });

  it('generates <dataDir>/master.key (0600, dir 0700) once and reuses it', () => {
    const dataDir = path.join(dirs.make(), 'nested', 'data');
    const config = configFor(dataDir);
    const first = loadMasterKey(config);
    expect(first).toHaveLength(32);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(masterKeyPath(dataDir)).mode & 0o777).toBe(0o600);
    expect(readFileSync(masterKeyPath(dataDir), 'utf8').trim()).toBe(first.toString('hex'));
    expect(loadMasterKey(config)).toEqual(first);
    expect(loadMasterKey(config, { allowGenerate: false })).toEqual(first);
  });

  it('refuses to generate a replacement when secrets already exist', () => {
    const config = configFor(dirs.make());
    expect(() => loadMasterKey(config, { allowGenerate: false })).toThrow(ConfigError);
    expect(() => loadMasterKey(config, { allowGenerate: false })).toThrow(/restore master\.key/);
    expect(() => statSync(masterKeyPath(config.dataDir))).toThrow();
  });

  it('reports a damaged master.key instead of replacing it', () => {
    const config = configFor(dirs.make());
    writeFileSync(masterKeyPath(config.dataDir), 'not a key\n');
    expect(() => loadMasterKey(config)).toThrow(/does not hold a 32-byte key/);
    expect(readFileSync(masterKeyPath(config.dataDir), 'utf8')).toBe('not a key\n');
  });
});

describe('readOrCreateSecretFile', () => {
  it('keeps the first contents and reports who created the file', () => {
    const file = path.join(dirs.make(), 'secret');
    expect(readOrCreateSecretFile(file, () => 'one')).toEqual({ contents: 'one', created: true });
    expect(readOrCreateSecretFile(file, () => 'two')).toEqual({ contents: 'one', created: false });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
