// Host-side pieces for device tests (there is no GPU here, so they are made): a CDI spec directory,
// device nodes made with mknod (root only), a real shared library `libcuda.so.<version>` exporting
// cuInit built with gcc, and a fake nvidia-smi. For unit tests of src/runtime/devices and for
// end-to-end jobs that assert on what a container sees.

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DRIVER_VERSION } from './cdi-specs.js';
import type { TarSpec } from './oci.js';

export const isRoot = process.getuid?.() === 0;

/** A fresh temporary directory; remove it with `rmSync(dir, { recursive: true })` (or cleanupCdi). */
export const tempDir = (prefix = 'strata-cdi-') => mkdtempSync(join(tmpdir(), prefix));

/** Write spec files (`name` -> object as JSON for `.json`, text otherwise) into `dir`, mode 0644. */
export function writeSpecs(dir: string, files: Record<string, string | object>): string[] {
  mkdirSync(dir, { recursive: true });
  return Object.entries(files).map(([name, content]) => {
    const path = join(dir, name);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2), { mode: 0o644 });
    chmodSync(path, 0o644);
    return path;
  });
}

/** NVIDIA's character major for GPUs (nvidia0.., nvidiactl=255); nvidia-uvm gets a dynamic one. */
export const NVIDIA_MAJOR = 195;

/**
 * Device nodes like a GPU node's under `devRoot`: nvidia0..N-1 (195:i), nvidiactl (195:255),
 * nvidia-uvm (a made-up 511:0). Root only (mknod). They need no driver: nothing opens them.
 */
export function makeGpuNodes(devRoot: string, gpus: number): string[] {
  mkdirSync(devRoot, { recursive: true });
  const nodes: [string, number, number][] = [...Array.from({ length: gpus }, (_, i): [string, number, number] => [`nvidia${i}`, NVIDIA_MAJOR, i]), ['nvidiactl', NVIDIA_MAJOR, 255], ['nvidia-uvm', 511, 0]];
  return nodes.map(([name, major, minor]) => {
    const path = join(devRoot, name);
    execFileSync('/usr/bin/mknod', ['-m', '0666', path, 'c', String(major), String(minor)]);
    return path;
  });
}

/** Build `<dir>/libcuda.so.<version>` (soname libcuda.so.1) exporting `int cuInit(unsigned)`. */
export function buildLibcuda(dir: string, version = DRIVER_VERSION): string {
  mkdirSync(dir, { recursive: true });
  const source = join(dir, 'libcuda.c');
  // cuInit returns CUDA_SUCCESS (0), so a caller can tell the library loaded and ran.
  writeFileSync(source, 'int cuInit(unsigned int flags) { (void)flags; return 0; }\nint strataFakeDriver(void) { return 1; }\n');
  const out = join(dir, `libcuda.so.${version}`);
  execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wl,-soname,libcuda.so.1', '-o', out, source]);
  rmSync(source);
  return out;
}

/**
 * A fake `nvidia-smi` (POSIX sh, so it runs in a busybox image): `-L` lists the GPUs as the real
 * one does, anything else prints a short table naming the driver version.
 */
export function writeFakeNvidiaSmi(dir: string, gpus: number, version = DRIVER_VERSION): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'nvidia-smi');
  const list = Array.from({ length: gpus }, (_, i) => `GPU ${i}: Strata Fake GPU (UUID: GPU-00000000-0000-0000-0000-${String(i).padStart(12, '0')})`).join('\\n');
  writeFileSync(path, `#!/bin/sh\nif [ "$1" = "-L" ]; then printf '${list}\\n'; exit 0; fi\necho "NVIDIA-SMI ${version}    Driver Version: ${version}    CUDA Version: 12.4"\n`, { mode: 0o755 });
  chmodSync(path, 0o755);
  return path;
}

export interface FakeGpuNode {
  root: string;
  devRoot: string;
  driverDir: string;
  specDir: string;
  libcuda: string;
  nvidiaSmi: string;
  nodes: string[];
}

/** Everything a GPU node has, under one temp dir (root only: mknod). Pass `root` to cleanupCdi. */
export function fakeGpuNode(gpus = 2): FakeGpuNode {
  const root = tempDir();
  const devRoot = join(root, 'dev');
  const driverDir = join(root, 'driver');
  return { root, devRoot, driverDir, specDir: join(root, 'cdi'), nodes: makeGpuNodes(devRoot, gpus), libcuda: buildLibcuda(driverDir), nvidiaSmi: writeFakeNvidiaSmi(driverDir, gpus) };
}

export const cleanupCdi = (root: string) => rmSync(root, { recursive: true, force: true });

/** A dynamically linked program that dlopens libcuda.so.1 and calls cuInit, with the loader and libc it needs. */
export function cudaProbeFiles(dir: string): TarSpec[] {
  const source = join(dir, 'probe.c');
  writeFileSync(
    source,
    '#include <dlfcn.h>\n#include <stdio.h>\nint main(void) {\n  void *h = dlopen("libcuda.so.1", RTLD_NOW);\n  if (!h) { printf("dlopen: %s\\n", dlerror()); return 1; }\n' +
      '  int (*init)(unsigned) = (int (*)(unsigned))dlsym(h, "cuInit");\n  printf("cuInit=%d\\n", init ? init(0) : -1);\n  return 0;\n}\n',
  );
  execFileSync('gcc', ['-O2', '-o', join(dir, 'cuda-probe'), source]);
  return [
    { name: 'usr', type: 'dir' },
    { name: 'usr/bin', type: 'dir' },
    { name: 'usr/bin/cuda-probe', fromFile: join(dir, 'cuda-probe'), mode: 0o755 },
    { name: 'lib64', type: 'dir' },
    { name: 'lib64/ld-linux-x86-64.so.2', fromFile: '/lib64/ld-linux-x86-64.so.2', mode: 0o755 },
    { name: 'lib', type: 'dir' },
    { name: 'lib/x86_64-linux-gnu', type: 'dir' },
    { name: 'lib/x86_64-linux-gnu/libc.so.6', fromFile: '/lib/x86_64-linux-gnu/libc.so.6', mode: 0o755 },
    ...['env', 'readlink', 'stat', 'grep', 'test'].map((applet): TarSpec => ({ name: `bin/${applet}`, type: 'symlink', linkname: 'busybox' })),
  ];
}
