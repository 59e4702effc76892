// plugstack.conf (spank(8)), as far as the Slurm client needs it inside a container: the plugin
// files it names and the files it includes. Pure.
//
//   required|optional PATH [ARGS...]     PATH absolute, or relative to PluginDir
//   include GLOB                         more plugstack files

export interface Plugstack {
  /** Plugin paths as written (absolute or relative to PluginDir). */
  plugins: string[];
  /** Include patterns as written. */
  includes: string[];
}

export function parsePlugstack(text: string): Plugstack {
  const result: Plugstack = { plugins: [], includes: [] };
  for (const raw of text.split('\n')) {
    const words = raw.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean);
    if (words.length < 2) continue;
    const keyword = words[0].toLowerCase();
    if (keyword === 'required' || keyword === 'optional') result.plugins.push(words[1]);
    else if (keyword === 'include') result.includes.push(...words.slice(1));
  }
  return result;
}
