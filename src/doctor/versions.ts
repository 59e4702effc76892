// Release numbers as doctor compares them (Slurm's "24.11.5", a kernel's "6.18.44-fc-v1252").

/**
 * Whether `version` is older than `floor` (compared part by part, as many parts as `floor` has);
 * undefined when `version` does not start with that many numbers.
 */
export function versionBefore(version: string | undefined, floor: readonly number[]): boolean | undefined {
  const parts = (version ?? '').split(/[.-]/, floor.length).map(Number);
  if (parts.length < floor.length || parts.some((part) => !Number.isInteger(part))) return undefined;
  for (let i = 0; i < floor.length; i++) if (parts[i] !== floor[i]) return parts[i] < floor[i];
  return false;
}
