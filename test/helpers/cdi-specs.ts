// CDI spec fixtures: a small `example.com/gpu` spec, and one shaped exactly like the output of
// `nvidia-ctk cdi generate` (hand-written from NVIDIA's generator tests and docs: cdiVersion 0.5.0,
// devices named by index plus `all`, common edits with the driver's nodes, libraries and the
// nvidia-cdi-hook hooks). Paths are parameters so tests can point them at files they made.

export interface NvidiaSpecOptions {
  /** Where the fake /dev lives on the host (`/dev` on a real node). */
  devRoot: string;
  /** Host directory holding libcuda.so.<driverVersion> and nvidia-smi. */
  driverDir: string;
  /** Number of GPUs: devices "0".."N-1", nodes <devRoot>/nvidia<N>. */
  gpus: number;
  driverVersion?: string;
  /** Container directory the libraries are mounted into. */
  libDir?: string;
  /**
   * The device nodes' container directory (default /dev). A test on a node without GPUs makes its
   * nodes in a directory of the host's /dev and passes that same directory here: the container's
   * /dev is the host's, so a node must be at its host path.
   */
  containerDevRoot?: string;
}

export const DRIVER_VERSION = '550.54.15';
export const CONTAINER_LIB_DIR = '/usr/lib/x86_64-linux-gnu';

/** The nvidia-ctk-shaped spec as YAML text (nvidia-ctk writes YAML with 4-space indents). */
export function nvidiaSpecYaml(options: NvidiaSpecOptions): string {
  const version = options.driverVersion ?? DRIVER_VERSION;
  const lib = options.libDir ?? CONTAINER_LIB_DIR;
  const dev = options.devRoot;
  const node = (n: string) => `            - path: ${options.containerDevRoot ?? '/dev'}/${n}\n              hostPath: ${dev}/${n}\n`;
  const gpu = (index: number) => `    - name: "${index}"\n      containerEdits:\n        deviceNodes:\n${node(`nvidia${index}`)}`;
  const all = Array.from({ length: options.gpus }, (_, index) => node(`nvidia${index}`)).join('');
  const hook = (args: string[]) =>
    `        - hookName: createContainer\n          path: /usr/bin/nvidia-cdi-hook\n          args:\n${['nvidia-cdi-hook', ...args].map((arg) => `            - ${arg}\n`).join('')}          env:\n            - NVIDIA_CTK_DEBUG=false\n`;
  const mount = (host: string, container: string) =>
    `        - hostPath: ${host}\n          containerPath: ${container}\n          options:\n            - ro\n            - nosuid\n            - nodev\n            - rbind\n            - rprivate\n`;
  return [
    '---\n',
    'cdiVersion: 0.5.0\n',
    'kind: nvidia.com/gpu\n',
    'devices:\n',
    ...Array.from({ length: options.gpus }, (_, index) => gpu(index)),
    `    - name: all\n      containerEdits:\n        deviceNodes:\n${all}`,
    'containerEdits:\n',
    '    env:\n',
    `        - NVIDIA_CTK_LIBCUDA_DIR=${lib}\n`,
    '        - NVIDIA_VISIBLE_DEVICES=void\n',
    '    deviceNodes:\n',
    node('nvidiactl').replace(/^ {4}/gm, ''),
    node('nvidia-uvm').replace(/^ {4}/gm, ''),
    '    hooks:\n',
    hook(['create-symlinks', '--link', `libcuda.so.1::${lib}/libcuda.so`]),
    hook(['enable-cuda-compat', `--host-driver-version=${version}`]),
    hook(['update-ldcache', '--folder', lib]),
    hook(['disable-device-node-modification']),
    '    mounts:\n',
    mount(`${options.driverDir}/libcuda.so.${version}`, `${lib}/libcuda.so.${version}`),
    mount(`${options.driverDir}/nvidia-smi`, '/usr/bin/nvidia-smi'),
  ].join('');
}

export interface ExampleSpecOptions {
  /** Host device node of each GPU (made with mknod, or an existing one such as /dev/null). */
  nodes: string[];
  /** A host file or directory bound into the container at /opt/example. */
  share: string;
  cdiVersion?: string;
}

/** A minimal vendor spec of kind example.com/gpu: one device per node, a common mount, env and group. */
export function exampleGpuSpec(options: ExampleSpecOptions): Record<string, unknown> {
  return {
    cdiVersion: options.cdiVersion ?? '0.7.0',
    kind: 'example.com/gpu',
    devices: options.nodes.map((hostPath, index) => ({
      name: `gpu${index}`,
      containerEdits: { deviceNodes: [{ path: `/dev/example${index}`, hostPath }], env: [`EXAMPLE_GPU_${index}=present`] },
    })),
    containerEdits: {
      env: ['EXAMPLE_SDK=/opt/example', 'LD_LIBRARY_PATH=/opt/example/lib'],
      mounts: [{ hostPath: options.share, containerPath: '/opt/example', options: ['ro', 'rbind'] }],
      additionalGids: [0, 4242],
    },
  };
}
