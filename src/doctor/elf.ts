// Just enough ELF to tell whether a file is a loadable shared object for this machine and which
// symbols it exports (the dynamic symbol table), without running nm or objdump, which a compute
// node may not have. Pure: works on the file's bytes.

export interface ElfInfo {
  /** 64 or 32. */
  bits: number;
  /** ET_DYN (3) for a shared object. */
  type: number;
  /** e_machine, e.g. 62 = x86-64, 183 = AArch64. */
  machine: number;
  /** Names of defined (not undefined) global or weak dynamic symbols. */
  exports: string[];
  /**
   * The value of an exported 4-byte `plugin_version`: a Slurm plugin's SLURM_VERSION_NUMBER
   * ((major << 16) | (minor << 8) | micro) of the headers it was built against.
   */
  pluginVersion?: number;
}

const SHT_DYNSYM = 11;
const STB_GLOBAL = 1;
const STB_WEAK = 2;

/** The ELF facts of `bytes`, or a one-line reason why it is not a readable ELF file. */
export function readElf(bytes: Buffer): ElfInfo | { error: string } {
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46) return { error: 'not an ELF file' };
  const bits = bytes[4] === 2 ? 64 : bytes[4] === 1 ? 32 : 0;
  if (!bits) return { error: 'unknown ELF class' };
  if (bytes[5] !== 1) return { error: 'big-endian ELF (not for this machine)' };
  const wide = bits === 64;
  const word = (offset: number) => (wide ? Number(bytes.readBigUInt64LE(offset)) : bytes.readUInt32LE(offset));
  const type = bytes.readUInt16LE(16);
  const machine = bytes.readUInt16LE(18);
  const sectionsAt = word(wide ? 0x28 : 0x20);
  const sectionSize = bytes.readUInt16LE(wide ? 0x3a : 0x2e);
  const sectionCount = bytes.readUInt16LE(wide ? 0x3c : 0x30);
  const section = (index: number) => {
    const at = sectionsAt + index * sectionSize;
    if (at + sectionSize > bytes.length) throw new RangeError('truncated section table');
    return {
      type: bytes.readUInt32LE(at + 4),
      address: word(at + (wide ? 0x10 : 0x0c)),
      offset: word(at + (wide ? 0x18 : 0x10)),
      size: word(at + (wide ? 0x20 : 0x14)),
      link: bytes.readUInt32LE(at + (wide ? 0x28 : 0x18)),
      entrySize: word(at + (wide ? 0x38 : 0x24)),
    };
  };
  // The 4 bytes at virtual address `address` in `holder` (the section the symbol is defined in).
  const valueAt = (holder: ReturnType<typeof section>, address: number) => {
    const at = holder.offset + address - holder.address;
    return at >= holder.offset && at + 4 <= Math.min(bytes.length, holder.offset + holder.size) ? bytes.readUInt32LE(at) : undefined;
  };
  try {
    const exports: string[] = [];
    let pluginVersion: number | undefined;
    for (let index = 0; index < sectionCount; index++) {
      const symbols = section(index);
      if (symbols.type !== SHT_DYNSYM || !symbols.entrySize) continue;
      const strings = section(symbols.link);
      for (let at = symbols.offset; at + symbols.entrySize <= symbols.offset + symbols.size; at += symbols.entrySize) {
        const name = bytes.readUInt32LE(at);
        const info = bytes[at + (wide ? 4 : 12)];
        const sectionIndex = bytes.readUInt16LE(at + (wide ? 6 : 14));
        const binding = info >> 4;
        if (!name || sectionIndex === 0 || (binding !== STB_GLOBAL && binding !== STB_WEAK)) continue;
        const start = strings.offset + name;
        const end = bytes.indexOf(0, start);
        if (end <= start) continue;
        const symbol = bytes.toString('latin1', start, end);
        exports.push(symbol);
        if (symbol === 'plugin_version') pluginVersion = valueAt(section(sectionIndex), wide ? Number(bytes.readBigUInt64LE(at + 8)) : bytes.readUInt32LE(at + 4));
      }
    }
    return { bits, type, machine, exports, ...(pluginVersion === undefined ? {} : { pluginVersion }) };
  } catch (error) {
    return { error: `damaged ELF file (${error instanceof Error ? error.message : String(error)})` };
  }
}
