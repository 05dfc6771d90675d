/**
 * s3rver (Koa + files on disk) in a process of its own, so its CPU and event loop are not shared
 * with a load generator: the soak's and the benchmark's upstream. Plain CommonJS, so no
 * transpiler runs inside a measured process.
 * Usage: node test/helpers/s3rver-main.cjs DIRECTORY  — prints `listening PORT` once it accepts requests.
 */
'use strict';
const S3rver = require('s3rver');

const directory = process.argv[2];
if (!directory) {
  console.error('usage: node test/helpers/s3rver-main.cjs DIRECTORY');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  vhostBuckets: false,
  allowMismatchedSignatures: false,
  resetOnClose: false,
});

server.run().then(
  (address) => process.stdout.write(`listening ${address.port}\n`),
  (error) => {
    console.error(`s3rver failed to start: ${(error && error.stack) || error}`);
    process.exit(1);
  },
);

process.on('SIGTERM', () => {
  const closed = server.close();
  // close() waits for idle keep-alive sockets (the gateway's pool); do not let them hold us up.
  if (server.httpServer) server.httpServer.closeAllConnections();
  closed.finally(() => process.exit(0));
});
