/** Runs real S3 command-line clients (aws-cli, rclone, s3cmd, boto3 scripts) against a gateway. */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface Credentials {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], env: Record<string, string> = {}, input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LANG: 'C.UTF-8', ...env }, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Fails with the client's own output, so a broken run explains itself. */
export async function runOk(command: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const result = await run(command, args, env);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
  }
  return result.stdout;
}

export const PYENV_PYTHON = 'python3';
export const DEBIAN_PYTHON = '/usr/bin/python3';
/** aws-cli v1 from the pyenv Python, and Debian's packaged aws-cli v2. */
export const PYENV_AWS = 'aws';
export const DEBIAN_AWS = '/usr/bin/aws';

export function awsEnv(credentials: Credentials, home: string): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_DEFAULT_REGION: credentials.region,
    AWS_REGION: credentials.region,
    AWS_CONFIG_FILE: path.join(home, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
    HOME: home,
  };
}

/** rclone remote "kg" configured entirely through environment variables. */
export function rcloneEnv(credentials: Credentials, home: string): Record<string, string> {
  return {
    HOME: home,
    RCLONE_CONFIG: path.join(home, 'rclone.conf'),
    RCLONE_CONFIG_KG_TYPE: 's3',
    RCLONE_CONFIG_KG_PROVIDER: 'Other',
    RCLONE_CONFIG_KG_ACCESS_KEY_ID: credentials.accessKeyId,
    RCLONE_CONFIG_KG_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    RCLONE_CONFIG_KG_ENDPOINT: credentials.endpoint,
    RCLONE_CONFIG_KG_REGION: credentials.region,
    RCLONE_CONFIG_KG_FORCE_PATH_STYLE: 'true',
  };
}

/** Writes an s3cmd config file for path-style access over plain HTTP and returns its path. */
export function s3cmdConfig(credentials: Credentials, home: string): string {
  const host = new URL(credentials.endpoint).host;
  const file = path.join(home, 's3cfg');
  writeFileSync(
    file,
    [
      '[default]',
      `access_key = ${credentials.accessKeyId}`,
      `secret_key = ${credentials.secretAccessKey}`,
      `host_base = ${host}`,
      `host_bucket = ${host}`,
      `bucket_location = ${credentials.region}`,
      'use_https = False',
      'signature_v2 = False',
      'multipart_chunk_size_mb = 5',
      '',
    ].join('\n'),
  );
  return file;
}

export function tempHome(): string {
  return mkdtempSync(path.join(tmpdir(), 'keygate-client-'));
}

/** Debian clients are installed by .ci/run; locally they may be missing, which must fail loudly in CI. */
export function debianClientsPresent(): boolean {
  return [DEBIAN_PYTHON, DEBIAN_AWS, '/usr/bin/rclone', '/usr/bin/s3cmd'].every((file) => existsSync(file));
}

/** Writes `files` (relative path -> content) under `<home>/tree`, for clients to upload. */
export function writeTree(home: string, files: Record<string, Buffer>): { dir: string; files: Record<string, Buffer> } {
  const dir = path.join(home, 'tree');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  return { dir, files };
}

/** Every file below `dir`, as paths relative to it. */
export function listTree(dir: string, base = ''): string[] {
  return readdirSync(path.join(dir, base), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(base, entry.name);
    return entry.isDirectory() ? listTree(dir, relative) : [relative];
  });
}
