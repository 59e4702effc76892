// The store as the calling user sees it, for commands.

import { userInfo } from 'node:os';
import { loadConfig } from '../config/load.js';
import { Store } from '../store/store.js';

/** The store as this user sees it: `~/NAME:TAG` is their own namespace. */
export async function openStore() {
  const config = await loadConfig();
  return { config, store: new Store(config.store.path, loginName()) };
}

function loginName(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined; // a uid without a passwd entry: `~/` is then an error naming ~USER/
  }
}
