// The node agent's wire formats (src/runtime/agent/frames.ts): what the front-end sends and reads,
// and the gate's frames, whatever the chunking.
import { decodeReply, decodeRequest, encodeFrame, encodeRefusal, encodeReply, encodeRequest, FrameDecoder, HEARTBEAT } from '../../src/runtime/agent/frames.js';

describe('request', () => {
  test('round trip of a Slurm environment, values with =, newlines and UTF-8 kept', () => {
    const env = { SLURM_JOB_ID: '42', SPANK_STRATA_MOUNTS: '/a:/b,/c=d:/e', ODD: 'line1\nline2', NAME: 'Jürgen' };
    expect(decodeRequest(encodeRequest({ phase: 'prolog', env }))).toEqual({ phase: 'prolog', env });
    expect(decodeRequest(encodeRequest({ phase: 'epilog', env: {} }))).toEqual({ phase: 'epilog', env: {} });
  });

  test('as getenv: the first of duplicated names wins; entries without a name are skipped', () => {
    const bytes = Buffer.from('strata-agent/1 epilog\nA=1\0A=2\0=x\0noequals\0B=\0');
    expect(decodeRequest(bytes)).toEqual({ phase: 'epilog', env: { A: '1', B: '' } });
  });

  test('anything else is refused, never half-read', () => {
    expect(decodeRequest(Buffer.from('strata-agent/2 prolog\n'))).toEqual({ refused: expect.stringContaining('strata-agent/2') });
    expect(decodeRequest(Buffer.from('strata-agent/1 exec\n'))).toEqual({ refused: 'unknown phase' });
    expect(decodeRequest(Buffer.from('strata-agent/1 prolog extra\n'))).toEqual({ refused: 'unknown phase' });
    expect(decodeRequest(Buffer.from('strata-agent/1 prolog'))).toEqual({ refused: 'no request line' });
    expect(decodeRequest(Buffer.from('strata-agent/1 prolog\nA=1'))).toEqual({ refused: 'environment not NUL-terminated' });
  });
});

describe('reply', () => {
  test('round trip, after heartbeats, with multi-byte messages', () => {
    const reply = { status: 1, stdout: '', stderr: 'strata: prolog: job 7: image store ✗ unreachable\n' };
    expect(decodeReply(Buffer.concat([HEARTBEAT, HEARTBEAT, encodeReply(reply)]))).toEqual(reply);
    expect(decodeReply(encodeReply({ status: 0, stdout: 'plan\n', stderr: '' }))).toEqual({ status: 0, stdout: 'plan\n', stderr: '' });
  });

  test('a refusal names its reason on one line', () => {
    expect(decodeReply(encodeRefusal('changed: /x\ny'))).toEqual({ refused: 'changed: /x y' });
  });

  test('a cut-off or malformed reply is no reply (the front-end runs Node)', () => {
    const whole = encodeReply({ status: 0, stdout: 'out', stderr: 'err' });
    for (let cut = 0; cut < whole.length; cut++) expect(decodeReply(whole.subarray(0, cut))).toBeUndefined();
    expect(decodeReply(Buffer.from('status 256 0 0\n'))).toBeUndefined();
    expect(decodeReply(Buffer.from('status -1 0 0\n'))).toBeUndefined();
    expect(decodeReply(Buffer.from('status 0 0 0\nextra'))).toBeUndefined();
    expect(decodeReply(Buffer.from('ok\n'))).toBeUndefined();
  });
});

describe('gate frames', () => {
  test('split at every byte, and several in one chunk, give the same frames', () => {
    const stream = Buffer.concat([encodeFrame(3, Buffer.from('a\nb')), encodeFrame(0, Buffer.alloc(0)), encodeFrame(12, Buffer.from('x'.repeat(300)))]);
    const expected = [
      { connection: 3, bytes: Buffer.from('a\nb') },
      { connection: 0, bytes: Buffer.alloc(0) },
      { connection: 12, bytes: Buffer.from('x'.repeat(300)) },
    ];
    expect(new FrameDecoder().push(stream)).toEqual(expected);
    const decoder = new FrameDecoder();
    const frames = [...stream].flatMap((byte) => decoder.push(Buffer.from([byte])));
    expect(frames).toEqual(expected);
  });

  test('a malformed header is an error, not a guess', () => {
    expect(() => new FrameDecoder().push(Buffer.from('x 1\na'))).toThrow(/bad frame header/);
    expect(() => new FrameDecoder().push(Buffer.from('1'.repeat(40)))).toThrow(/too long/);
  });
});
