#!/usr/bin/node
// Torque mom_priv/prologue (mother superior; install as a symlink to this file).
import { runTorquePrologue } from './torque-prologue.js';

process.exitCode = await runTorquePrologue(process.argv.slice(2), process.env, 'mother-superior');
