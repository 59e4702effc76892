// The container's environment as planned (pure): which files the node and strata put into every
// container, how the job user's passwd and group entries merge with the image's, and how site
// settings and a user's own mounts change that.

import { defaultConfig } from '../../src/config/validate.js';
import { planEnvironment } from '../../src/runtime/job/environment.js';
import { planJob } from '../../src/runtime/job/plan.js';
import type { ResolvedImage } from '../../src/store/store.js';
import { mergeGroups, mergePasswd } from '../../src/runtime/job/identity.js';

const ALICE = 'alice:x:1000:1000:Alice:/home/alice:/bin/bash';

describe('mergePasswd', () => {
  test("the node's entry replaces the image's of the same name or uid; the rest stays in order", () => {
    const image = 'root:x:0:0:root:/root:/bin/bash\nalice:x:5:5::/:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\ndaemon:x:1:1::/:/bin/false\n';
    expect(mergePasswd(image, ALICE)).toBe(`root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/bin/false\n${ALICE}\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`);
  });

  test('an image without entries gets root, the user and nobody; malformed lines and comments go', () => {
    expect(mergePasswd('# comment\nbroken line\n+::::::\n\n', ALICE)).toBe(`root:x:0:0:root:/root:/bin/sh\n${ALICE}\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`);
  });

  test("a user the node does not know adds nothing, and the image's nobody is kept", () => {
    expect(mergePasswd('nobody:x:65534:65534::/:/sbin/nologin\n', undefined)).toBe('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/sbin/nologin\n');
  });
});

describe('mergeGroups', () => {
  test("the user's groups replace the image's of the same name or gid; the user is the only member of supplementary ones", () => {
    const image = 'root:x:0:\nvideo:x:44:ubuntu\nalice:x:7:\nprojects:x:2000:bob\n';
    const host = ['alice:*:1000:', 'projects:*:2000:bob,carol,alice', 'hpc:x:3000:dave'];
    expect(mergeGroups(image, host, 'alice', 1000)).toBe('root:x:0:\nvideo:x:44:ubuntu\nalice:x:1000:\nprojects:x:2000:alice\nhpc:x:3000:alice\nnogroup:x:65534:\n');
  });

  test('an image without groups gets root and nogroup', () => {
    expect(mergeGroups('', ['alice:x:1000:'], 'alice', 1000)).toBe('root:x:0:\nalice:x:1000:\nnogroup:x:65534:\n');
  });
});

describe('planEnvironment', () => {
  const plan = (edit: (config: ReturnType<typeof defaultConfig>) => void = () => undefined) => {
    const config = defaultConfig();
    edit(config);
    return planEnvironment('/run/strata/jobs/7', '/run/strata/jobs/7/rootfs', 1000, 1000, config);
  };

  test('by default: generated identity and hostname, the node files read-only, a writable /tmp of the site size', () => {
    const { steps, binds } = plan((c) => (c.container.tmpSize = 64 * 2 ** 20));
    expect(steps).toEqual([
      { op: 'job-files', dir: '/run/strata/jobs/7/etc', rootfs: '/run/strata/jobs/7/rootfs', uid: 1000, gid: 1000, hostname: true },
      { op: 'tmp-tmpfs', target: '/run/strata/jobs/7/tmp/t', sizeBytes: 64 * 2 ** 20 },
    ]);
    expect(binds.map((bind) => [bind.source, bind.target, bind.readonly, bind.optional])).toEqual([
      ['/run/strata/jobs/7/etc/passwd', '/etc/passwd', true, false],
      ['/run/strata/jobs/7/etc/group', '/etc/group', true, false],
      ['/run/strata/jobs/7/etc/hostname', '/etc/hostname', true, false],
      ['/etc/hosts', '/etc/hosts', true, true],
      ['/etc/resolv.conf', '/etc/resolv.conf', true, true],
      ['/etc/localtime', '/etc/localtime', true, true],
      ['/run/strata/jobs/7/tmp/t', '/tmp', false, false],
    ]);
    expect(binds.every((bind) => bind.trusted && bind.automatic && !bind.recursive)).toBe(true);
  });

  test('each host file can be turned off by the site', () => {
    const { steps, binds } = plan((c) => Object.assign(c.container, { hosts: false, resolvConf: false, hostname: false, localtime: false }));
    expect(binds.map((bind) => bind.target)).toEqual(['/etc/passwd', '/etc/group', '/tmp']);
    expect(steps[0]).toMatchObject({ op: 'job-files', hostname: false });
  });
});

describe('the environment in the job plan', () => {
  const image = {
    ref: 'x:1',
    manifestDigest: `sha256:${'b'.repeat(64)}`,
    config: { config: {} },
    layers: [{ digest: `sha256:${'a'.repeat(64)}`, size: 1, format: 'squashfs', path: `/store/layers/sha256/${'a'.repeat(64)}.sqfs` }],
  } as unknown as ResolvedImage;
  const binds = (mounts: { source: string; target: string }[], edit: (config: ReturnType<typeof defaultConfig>) => void = () => undefined) => {
    const config = defaultConfig();
    edit(config);
    const plan = planJob({ jobId: '7', uid: 1000, gid: 1000, writable: false, mounts: mounts.map((m) => ({ ...m, readonly: true, optional: false, recursive: false })) }, config, image);
    return plan.steps.flatMap((step) => (step.op === 'bind' ? [[step.source, step.target]] : []));
  };

  test("the files are generated after the rootfs is mounted and bound before it turns read-only", () => {
    const config = defaultConfig();
    const ops = planJob({ jobId: '7', uid: 1000, gid: 1000, writable: false, mounts: [] }, config, image).steps.map((step) => step.op);
    expect(ops.indexOf('job-files')).toBe(ops.indexOf('rootfs') + 1);
    expect(ops.lastIndexOf('bind')).toBeLessThan(ops.indexOf('readonly'));
  });

  test("a user's mount on /etc/hosts or /tmp replaces strata's; a site mount there wins over the node's file", () => {
    const user = binds([{ source: '/home/a/hosts', target: '/etc/hosts' }, { source: '/scratch/a', target: '/tmp' }]);
    expect(user.filter(([, target]) => target === '/etc/hosts' || target === '/tmp')).toEqual([
      ['/scratch/a', '/tmp'],
      ['/home/a/hosts', '/etc/hosts'],
    ]);
    const site = binds([], (c) => c.mounts.push({ source: '/site/hosts', target: '/etc/hosts', readonly: true, optional: false }));
    expect(site.filter(([, target]) => target === '/etc/hosts')).toEqual([['/site/hosts', '/etc/hosts']]);
  });
});
