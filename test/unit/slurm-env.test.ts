import { slurmJob } from '../../src/scheduler/slurm-env.js';

const BASE = { SLURM_JOB_ID: '4242', SLURM_JOB_UID: '1000', SLURM_JOB_GID: '100' };

describe('slurmJob', () => {
  test('a job without strata options: no image, writable by default', () => {
    expect(slurmJob(BASE)).toEqual({
      job: '4242',
      uid: 1000,
      gid: 100,
      image: undefined,
      imageDigest: undefined,
      mounts: undefined,
      workdir: undefined,
      jobWorkdir: undefined,
      writable: true,
      upperSize: undefined,
      timings: false,
      slurmClient: true,
    });
  });

  test('SPANK_STRATA_* options map to prolog arguments', () => {
    const args = slurmJob({
      ...BASE,
      SPANK_STRATA_IMAGE: 'pytorch:24.05',
      SPANK_STRATA_IMAGE_DIGEST: `sha256:${'a'.repeat(64)}`,
      SPANK_STRATA_MOUNTS: '/lustre/proj:/data:ro,/scratch',
      SPANK_STRATA_WORKDIR: '/data/run',
      SPANK_STRATA_WRITABLE: '0',
      SPANK_STRATA_UPPER_SIZE: '4G',
      SPANK_STRATA_DEVICES: 'nvidia.com/gpu=all',
      SLURM_JOB_WORK_DIR: '/home/alice/proj',
    });
    expect(args).toEqual({
      job: '4242',
      uid: 1000,
      gid: 100,
      image: 'pytorch:24.05',
      imageDigest: `sha256:${'a'.repeat(64)}`,
      mounts: '/lustre/proj:/data:ro,/scratch',
      workdir: '/data/run',
      jobWorkdir: '/home/alice/proj',
      writable: false,
      upperSize: '4G',
      devices: 'nvidia.com/gpu=all',
      timings: false,
      slurmClient: true,
    });
  });

  test('Pyxis\'s flag pairs: yes/no, unset = the site default', () => {
    expect(slurmJob({ ...BASE, SPANK_STRATA_MOUNT_HOME: '0', SPANK_STRATA_ENTRYPOINT: '1', SPANK_STRATA_REMAP_ROOT: 'yes' })).toMatchObject({ mountHome: false, entrypoint: true, remapRoot: true });
    const unset = slurmJob({ ...BASE, SPANK_STRATA_MOUNT_HOME: '' });
    expect([unset.mountHome, unset.entrypoint, unset.remapRoot]).toEqual([undefined, undefined, undefined]);
  });

  test('empty SPANK values mean "not given"', () => {
    const args = slurmJob({
      ...BASE,
      SPANK_STRATA_IMAGE: '',
      SPANK_STRATA_IMAGE_DIGEST: '',
      SPANK_STRATA_MOUNTS: '',
      SPANK_STRATA_WORKDIR: '',
      SPANK_STRATA_UPPER_SIZE: '',
      SLURM_JOB_WORK_DIR: '',
    });
    expect(args).toMatchObject({ image: undefined, imageDigest: undefined, mounts: undefined, workdir: undefined, upperSize: undefined, jobWorkdir: undefined });
  });

  test('SLURM_JOBID is the fallback for SLURM_JOB_ID', () => {
    expect(slurmJob({ SLURM_JOBID: '77', SLURM_JOB_UID: '1', SLURM_JOB_GID: '1' }).job).toBe('77');
    expect(slurmJob({ SLURM_JOB_ID: '78', SLURM_JOBID: '77' }).job).toBe('78');
  });

  test('SLURM_UID is the fallback for SLURM_JOB_UID', () => {
    expect(slurmJob({ SLURM_JOB_ID: '1', SLURM_UID: '2001', SLURM_JOB_GID: '1' }).uid).toBe(2001);
    expect(slurmJob({ SLURM_JOB_ID: '1', SLURM_JOB_UID: '2002', SLURM_UID: '2001' }).uid).toBe(2002);
  });

  test('no job id, uid or gid: empty job and NaN ids (refused downstream)', () => {
    const args = slurmJob({});
    expect(args.job).toBe('');
    expect(args.uid).toBeNaN();
    expect(args.gid).toBeNaN();
  });

  test('uid 0 and non-numeric ids', () => {
    expect(slurmJob({ ...BASE, SLURM_JOB_UID: '0', SLURM_JOB_GID: '0' })).toMatchObject({ uid: 0, gid: 0 });
    expect(slurmJob({ ...BASE, SLURM_JOB_UID: 'alice' }).uid).toBeNaN();
  });

  test.each([
    ['0', false],
    ['no', false],
    ['false', false],
    ['NO', false],
    ['False', false],
    ['1', true],
    ['yes', true],
    ['true', true],
    ['TRUE', true],
    ['', true],
    [undefined, true],
  ])('SPANK_STRATA_WRITABLE=%j → writable %s', (value, writable) => {
    expect(slurmJob({ ...BASE, SPANK_STRATA_WRITABLE: value }).writable).toBe(writable);
  });
});
