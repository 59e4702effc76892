// What `strata import` is asked to do (shared by the command and the image-source importer).

export interface ImportArgs {
  source: string;
  tag?: string;
  base?: string;
  platform?: string;
  insecure?: boolean;
  flatten?: boolean;
}
