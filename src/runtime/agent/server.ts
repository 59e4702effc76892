// The resident node agent's loop: the gate (front/strata-agent-gate.c, a child) owns the root-only
// socket and hands over whole requests; each request runs `handle` and its reply goes back. Jobs
// run concurrently, except two requests of the same job, which run one after the other (an epilog
// never overtakes its own prolog, whose front-end slurmd may have killed). While a job runs its
// client gets a heartbeat every second, so a front-end can tell a working agent from a hung one.
//
// Lifetime: when `changed()` names a reason (strata was upgraded, the configuration file changed),
// the agent refuses new requests (their front-ends run Node themselves), closes the socket, lets
// the requests in flight finish and exits 0; its supervisor starts the new one.

import { spawn } from 'node:child_process';
import { decodeRequest, encodeFrame, encodeRefusal, encodeReply, FrameDecoder, HEARTBEAT, type AgentReply, type AgentRequest } from './frames.js';

export interface AgentOptions {
  socketPath: string;
  gatePath: string;
  /** Run one request in-process (rejecting = refused: its front-end runs it itself). */
  handle(request: AgentRequest): Promise<AgentReply>;
  /** Why this agent must make way for a new one (an upgrade, a new configuration), if it must. */
  changed(): string | undefined;
  note(event: string, meta?: Record<string, unknown>): void;
  checkEveryMs?: number;
  heartbeatMs?: number;
}

/** The job a request is for: requests of one job are serialized. */
const jobKey = (request: AgentRequest) => `${request.env.STRATA_CONFIG ?? ''}\0${request.env.SLURM_JOB_ID ?? request.env.SLURM_JOBID ?? ''}`;

/** Serve until told to make way (resolves 0) or the gate fails (resolves non-zero). */
export function serveAgent(options: AgentOptions): Promise<number> {
  const gate = spawn(options.gatePath, [options.socketPath], { stdio: ['pipe', 'pipe', 'inherit'], env: {} });
  const decoder = new FrameDecoder();
  const jobs = new Map<string, Promise<unknown>>();
  let inFlight = 0;
  let draining: string | undefined;
  let ready = false;
  let greeting = Buffer.alloc(0);
  let finish!: (code: number) => void;
  const done = new Promise<number>((resolve) => (finish = resolve));

  const send = (connection: number, bytes: Buffer) => {
    if (!gate.stdin.destroyed) gate.stdin.write(encodeFrame(connection, bytes));
  };
  // The reply and its end in one write: the gate wakes once.
  const answer = (connection: number, bytes: Buffer) => {
    if (!gate.stdin.destroyed) gate.stdin.write(Buffer.concat([encodeFrame(connection, bytes), encodeFrame(connection, Buffer.alloc(0))]));
  };
  const drain = (reason: string) => {
    if (draining) return;
    draining = reason;
    options.note('agent making way', { reason, inFlight });
    // Stop accepting: new front-ends find no socket and run Node themselves.
    send(0, Buffer.alloc(0));
    settle();
  };
  const settle = () => {
    if (draining && inFlight === 0) {
      gate.stdin.end();
      finish(0);
    }
  };

  const serve = async (connection: number, bytes: Buffer) => {
    const request = decodeRequest(bytes);
    if ('refused' in request) return answer(connection, encodeRefusal(request.refused));
    const reason = draining ?? options.changed();
    if (reason) {
      answer(connection, encodeRefusal(reason));
      return drain(reason);
    }
    inFlight++;
    const heartbeat = setInterval(() => send(connection, HEARTBEAT), options.heartbeatMs ?? 1000);
    const key = jobKey(request);
    const previous = jobs.get(key) ?? Promise.resolve();
    const run = previous.then(() => options.handle(request));
    const settled = run.catch(() => undefined);
    jobs.set(key, settled);
    try {
      answer(connection, encodeReply(await run));
    } catch (error) {
      options.note('request failed; its front-end runs it itself', { phase: request.phase, error: error instanceof Error ? error.message : String(error) });
      answer(connection, encodeRefusal('internal-error'));
    } finally {
      clearInterval(heartbeat);
      if (jobs.get(key) === settled) jobs.delete(key);
      inFlight--;
      settle();
    }
  };

  gate.stdout.on('data', (chunk: Buffer) => {
    if (!ready) {
      greeting = Buffer.concat([greeting, chunk]);
      const newline = greeting.indexOf(10);
      if (newline < 0) return;
      if (greeting.subarray(0, newline).toString() !== 'ready') return finish(1);
      ready = true;
      options.note('agent listening', { socket: options.socketPath, pid: process.pid });
      chunk = greeting.subarray(newline + 1);
    }
    for (const frame of decoder.push(chunk)) void serve(frame.connection, frame.bytes);
  });
  gate.on('error', (error) => {
    options.note('agent gate cannot run', { error: error.message });
    finish(1);
  });
  gate.on('exit', (code, signal) => {
    // Every client of ours saw its connection close: each runs its job itself now.
    if (!draining || inFlight) options.note('agent gate exited', { code, signal, inFlight });
    finish(draining && !inFlight ? 0 : 1);
  });
  gate.stdin.on('error', () => undefined);
  const check = setInterval(() => {
    const reason = options.changed();
    if (reason) drain(reason);
  }, options.checkEveryMs ?? 2000);
  return done.finally(() => clearInterval(check));
}
