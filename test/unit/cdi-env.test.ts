// The environment rule for devices: search paths are extended, everything else is replaced. A
// user notices this as "my image's LD_LIBRARY_PATH still works with --gpus".

import { LIST_VARIABLES, appendSearchPath, mergeEnv, searchPathAdditions } from '../../src/runtime/devices/env.js';

describe('mergeEnv', () => {
  test("an image's LD_LIBRARY_PATH keeps its directories first; the driver's are appended", () => {
    expect(mergeEnv(['LD_LIBRARY_PATH=/opt/app/lib:/usr/local/cuda/lib64'], ['LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu'])).toEqual(['LD_LIBRARY_PATH=/opt/app/lib:/usr/local/cuda/lib64:/usr/lib/x86_64-linux-gnu']);
  });

  test('a directory already on the path is not added again, nor empty ones', () => {
    expect(mergeEnv(['PATH=/usr/bin:/bin'], ['PATH=/bin::/usr/local/nvidia/bin:/usr/local/nvidia/bin'])).toEqual(['PATH=/usr/bin:/bin:/usr/local/nvidia/bin']);
  });

  test('a list variable the image does not set takes the device value as it is', () => {
    expect(mergeEnv(['HOME=/root'], ['LD_LIBRARY_PATH=/drv'])).toEqual(['HOME=/root', 'LD_LIBRARY_PATH=/drv']);
    expect(mergeEnv(['LD_LIBRARY_PATH='], ['LD_LIBRARY_PATH=/drv'])).toEqual(['LD_LIBRARY_PATH=/drv']);
  });

  test('other variables are replaced (NVIDIA_VISIBLE_DEVICES=void from the spec wins over the image)', () => {
    expect(mergeEnv(['NVIDIA_VISIBLE_DEVICES=all', 'A=1'], ['NVIDIA_VISIBLE_DEVICES=void'])).toEqual(['NVIDIA_VISIBLE_DEVICES=void', 'A=1']);
  });

  test('each name once, at its first place; a name repeated in the image keeps its last value', () => {
    expect(mergeEnv(['A=1', 'B=2', 'A=3'], ['C=4', 'B=5'])).toEqual(['A=3', 'B=5', 'C=4']);
  });

  test('values may contain "="; entries without a name are dropped', () => {
    expect(mergeEnv(['OPTS=a=b', '=x', 'junk'], ['X=y=z'])).toEqual(['OPTS=a=b', 'X=y=z']);
  });

  test('additions apply in order, so two devices both extend the same path', () => {
    expect(mergeEnv([], ['LD_LIBRARY_PATH=/a', 'LD_LIBRARY_PATH=/b'])).toEqual(['LD_LIBRARY_PATH=/a:/b']);
  });

  test('the list variables are the search paths, not arbitrary names', () => {
    expect([...LIST_VARIABLES]).toEqual(expect.arrayContaining(['PATH', 'LD_LIBRARY_PATH']));
    expect(LIST_VARIABLES.has('CUDA_VISIBLE_DEVICES')).toBe(false);
  });
});

describe('device search paths after whatever value wins', () => {
  test('searchPathAdditions: the list variables the devices add to, each directory once', () => {
    expect(searchPathAdditions(['NVIDIA_VISIBLE_DEVICES=void', 'LD_LIBRARY_PATH=/drv/lib', 'PATH=/drv/bin', 'LD_LIBRARY_PATH=/drv/lib::/drv/lib32', 'PATH='])).toEqual(['LD_LIBRARY_PATH=/drv/lib:/drv/lib32', 'PATH=/drv/bin']);
    expect(searchPathAdditions([])).toEqual([]);
  });

  test("appendSearchPath: after the user's value, never twice, no empty element made", () => {
    expect(appendSearchPath('/home/u/lib', '/drv/lib')).toBe('/home/u/lib:/drv/lib');
    expect(appendSearchPath('/drv/lib:/home/u/lib', '/drv/lib')).toBe('/drv/lib:/home/u/lib');
    expect(appendSearchPath('', '/drv/lib')).toBe('/drv/lib');
    expect(appendSearchPath(undefined, '/drv/lib:/drv/lib32')).toBe('/drv/lib:/drv/lib32');
    // The user's own empty element (the working directory) stays as written.
    expect(appendSearchPath('/a::/b', '/drv/lib')).toBe('/a::/b:/drv/lib');
  });
});
