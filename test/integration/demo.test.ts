/** `npm run demo` must start, prove a round trip and scope enforcement, and print commands that work as printed. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { PYENV_PYTHON, run } from '../helpers/clients.js';
import { REPO_ROOT, freePort } from '../helpers/gateway.js';

const demoDirs = () =>
  readdirSync(tmpdir())
    .filter((name) => name.startsWith('keygate-demo-'))
    .sort();

it('the demo starts an embedded upstream and gateway and shows them working', async () => {
  const [port, adminPort] = [await freePort(), await freePort()];
  const result = await run(process.execPath, ['--import', 'tsx', `${REPO_ROOT}/src/demo.ts`], {
    KEYGATE_PORT: String(port),
    KEYGATE_ADMIN_PORT: String(adminPort),
    KEYGATE_DEMO_EXIT: '1',
  });
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout).toContain('PUT + GET hello ✓.txt  -> "Hello through keygate!\\n"');
  expect(result.stdout).toContain('LIST private-bucket    -> AccessDenied');
  expect(result.stdout).toMatch(/export AWS_ACCESS_KEY_ID=rs_ak_live_[0-9a-f]{40}/);
  expect(result.stdout).toContain(`export AWS_ENDPOINT_URL=http://127.0.0.1:${port}`);
  expect(result.stdout).toContain('aws s3 ls s3://demo-bucket/');
  // The access log goes to its file, never between the lines above.
  expect(result.stdout).not.toContain('"type":"access"');
  expect(result.stdout).toMatch(/Access log: .*access\.log/);
});

it('prints a boto3 snippet that runs as printed, against the running demo', async () => {
  const [port, adminPort] = [await freePort(), await freePort()];
  const demo = spawn(process.execPath, ['--import', 'tsx', `${REPO_ROOT}/src/demo.ts`], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', KEYGATE_PORT: String(port), KEYGATE_ADMIN_PORT: String(adminPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  demo.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  demo.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const work = mkdtempSync(path.join(tmpdir(), 'keygate-snippet-'));
  try {
    const deadline = Date.now() + 60_000;
    while (!output.includes('Press Ctrl-C')) {
      if (demo.exitCode !== null || Date.now() > deadline) throw new Error(`the demo did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const snippet = /^# ---- boto3 ----\n([\s\S]*?)^# ---- end ----$/m.exec(output)?.[1];
    expect(snippet, output).toBeDefined();
    // Pasted as printed: flush-left, so Python takes it.
    writeFileSync(path.join(work, 'snippet.py'), snippet!);
    const ran = await run(PYENV_PYTHON, [path.join(work, 'snippet.py')]);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout.trim()).toBe('1');
  } finally {
    demo.kill('SIGTERM');
    await new Promise((resolve) => demo.once('exit', resolve));
    rmSync(work, { recursive: true, force: true });
  }
});

it('a demo whose port is taken says which ports and leaves nothing behind', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const taken = (blocker.address() as { port: number }).port;
  const before = demoDirs();
  try {
    const result = await run(process.execPath, ['--import', 'tsx', `${REPO_ROOT}/src/demo.ts`], {
      KEYGATE_PORT: String(taken),
      KEYGATE_ADMIN_PORT: String(await freePort()),
      KEYGATE_DEMO_EXIT: '1',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`port ${taken} \\(S3\\) .* is taken; run with other ports, e\\.g\\. KEYGATE_PORT=`));
    expect(result.stderr).not.toMatch(/KEYGATE_HOST/);
    expect(demoDirs()).toEqual(before);
  } finally {
    blocker.close();
  }
});
