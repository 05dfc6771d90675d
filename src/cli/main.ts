#!/usr/bin/env node
/** The `keygate` executable (package.json bin -> dist/cli/main.js; `npm run keygate -- …` runs it via tsx). */
import { runCli } from './run.js';

process.exitCode = await runCli(process.argv.slice(2));
