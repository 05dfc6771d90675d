/**
 * The benchmark's upstream: a real S3 server (s3rver, Koa + files on disk) in its own process, so
 * its CPU shows up as its own and its event loop is not shared with the load generator.
 * Usage: node bench/s3rver-main.cjs DIRECTORY  — prints `listening PORT` once it accepts requests.
 * Plain CommonJS so no transpiler runs inside the measured process.
 */
'use strict';
const S3rver = require('s3rver');

const directory = process.argv[2];
if (!directory) {
  console.error('usage: node bench/s3rver-main.cjs DIRECTORY');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  vhostBuckets: false,
  resetOnClose: false,
});

server.run().then(
  (address) => process.stdout.write(`listening ${address.port}\n`),
  (error) => {
    console.error(`s3rver failed to start: ${error.stack || error}`);
    process.exit(1);
  },
);

process.on('SIGTERM', () => {
  server.close().finally(() => process.exit(0));
  server.httpServer?.closeAllConnections();
});
