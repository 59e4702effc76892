// `strata _store-write`: the writing half of a store write for root or a user, as the store's
// owner (store/write/serve.ts). The request is on stdin, the relay on stdout; messages and
// progress go to stderr, which is the caller's terminal.

import { serveStoreWrite } from '../../store/write/serve.js';
import { terminalWriteReport } from '../write-report.js';

export async function storeWriteCommand(): Promise<number> {
  await serveStoreWrite(process.stdin, process.stdout, terminalWriteReport());
  return 0;
}
