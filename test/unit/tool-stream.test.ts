// A tool's streamed output (host/tool-stream.ts): all of it reaches a reader that starts late,
// and a reader that stops early stops the tool.

import { startTool } from '../../src/host/tool-stream.js';

test('output read only after the tool exited is all there (Node throws away an exited child\'s unread stdout)', async () => {
  const child = startTool('/bin/sh', ['-c', 'head -c 300000 /dev/zero'], ['ignore', 'pipe', 'pipe']);
  expect(await child.exit).toEqual({ code: 0, signal: null });
  await new Promise((resolve) => setTimeout(resolve, 20));
  let bytes = 0;
  for await (const chunk of child.stdout!) bytes += (chunk as Buffer).length;
  expect(bytes).toBe(300000);
});

test('a reader that stops early stops the tool (its stdout goes with the stream read)', async () => {
  const child = startTool('/bin/sh', ['-c', 'exec cat /dev/zero'], ['ignore', 'pipe', 'pipe']);
  for await (const chunk of child.stdout!) {
    expect((chunk as Buffer).length).toBeGreaterThan(0);
    break;
  }
  const exit = await child.exit;
  expect(exit.signal === 'SIGPIPE' || (exit.code !== null && exit.code !== 0)).toBe(true);
});
