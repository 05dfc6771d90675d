/** `npm run demo` must start, prove a round trip and scope enforcement, and print working commands. */
import { expect, it } from 'vitest';
import { run } from '../helpers/clients.js';
import { REPO_ROOT, freePort } from '../helpers/gateway.js';

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
  expect(result.stdout).toContain(`aws --endpoint-url http://127.0.0.1:${port} s3 ls s3://demo-bucket/`);
});
