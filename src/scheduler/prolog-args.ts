// What a scheduler adapter hands the prolog: the job and its container options as text, exactly as
// the `strata prolog` command line carries them (validated by the command, not here).

export interface PrologArgs {
  job: string;
  uid: number;
  gid: number;
  image?: string;
  imageDigest?: string;
  mounts?: string;
  workdir?: string;
  jobWorkdir?: string;
  writable?: boolean;
  upperSize?: string;
  /** `--container-devices`: CDI devices, `vendor.com/class=name[,...]`. */
  devices?: string;
  /** Pyxis's flag pairs; undefined = the site default (container.* in strata.yaml). */
  mountHome?: boolean;
  entrypoint?: boolean;
  remapRoot?: boolean;
  /** `--container-save`: a file path or ~/NAME:TAG, where the epilog saves the writable layer. */
  save?: string;
  timings?: boolean;
  /** A Slurm job: the node's Slurm client is made usable in its container (slurm_client.*). */
  slurmClient?: boolean;
  /** Print the plan (JSON) and change nothing. */
  dryRun?: boolean;
}

export interface PrologExit {
  /**
   * Exit status for a user-caused failure. 0 (Slurm: any other status drains the node; the error
   * file tells the job). Schedulers that can fail just the job (PBS hooks, Torque's prologue) ask
   * for their own status, and the message is then also printed on stderr.
   */
  userError?: number;
}
