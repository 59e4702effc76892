// The CDI spec file format (cncf-tags/container-device-interface SPEC.md, schema/defs.json), as
// TypeScript types: field names exactly as they are written in a spec file. Versions 0.1.0 to
// 1.1.0 share one shape; newer fields are optional and only allowed from the version that added them.

export interface CdiDeviceNode {
  /** Path inside the container. */
  path: string;
  /** Path on the host (0.5.0+); `path` when absent. */
  hostPath?: string;
  /** `c`, `b`, `u` (unbuffered character), `p` (FIFO); absent: taken from the host. */
  type?: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  /** cgroup permissions: any of `rwm`, or `none`; empty means `rwm`. */
  permissions?: string;
  uid?: number;
  gid?: number;
}

export interface CdiMount {
  hostPath: string;
  containerPath: string;
  /** Filesystem type (0.4.0+); for bind mounts a dummy such as `none`. */
  type?: string;
  options?: string[];
}

export interface CdiHook {
  /** OCI hook point: createRuntime, createContainer, startContainer, poststart, poststop, prestart. */
  hookName: string;
  path: string;
  /** argv, including argv[0]. */
  args?: string[];
  env?: string[];
  /** Seconds, > 0. */
  timeout?: number;
}

export interface CdiNetDevice {
  hostInterfaceName: string;
  name: string;
}

export interface CdiEdits {
  env?: string[];
  deviceNodes?: CdiDeviceNode[];
  mounts?: CdiMount[];
  hooks?: CdiHook[];
  /** 0.7.0+; zeros are ignored. */
  additionalGids?: number[];
  /** 0.7.0+ (resctrl); strata does not implement it. */
  intelRdt?: Record<string, unknown>;
  /** 1.1.0+; strata does not implement it. */
  netDevices?: CdiNetDevice[];
}

export interface CdiDevice {
  name: string;
  annotations?: Record<string, string>;
  containerEdits: CdiEdits;
}

export interface CdiSpec {
  cdiVersion: string;
  kind: string;
  annotations?: Record<string, string>;
  devices: CdiDevice[];
  /** Applied once when any device of this spec is requested. */
  containerEdits?: CdiEdits;
}

/** A spec file read and validated, with where it came from. */
export interface LoadedSpec {
  /** The file, for messages. */
  path: string;
  /** Index of its directory in the configured list: a later directory wins a name clash. */
  priority: number;
  vendor: string;
  class: string;
  spec: CdiSpec;
}

/** A spec file that could not be used, and why (a node fault: the admin's file is broken). */
export interface SpecProblem {
  path: string;
  message: string;
}

/** Spec versions strata reads, oldest first (specs-go/version.go). */
export const CDI_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.4.0', '0.5.0', '0.6.0', '0.7.0', '0.8.0', '1.0.0', '1.1.0'] as const;
export const CDI_CURRENT_VERSION = CDI_VERSIONS[CDI_VERSIONS.length - 1];

/** OCI hook points a CDI hook may name. */
export const HOOK_NAMES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
