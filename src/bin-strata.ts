#!/usr/bin/node
// The `strata` executable.
import { main } from './cli/main.js';

process.exitCode = await main();
