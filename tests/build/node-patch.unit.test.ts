/** The byte-level changes the build makes to node and to the SEA blob, on synthetic files of the same shape. */
import { markSnapshotPortable, tuneNode } from '../../build/node-patch.cjs';

/** A fixed-address ELF64 with one writable PT_LOAD covering the file: literals, a flag value and a flag-table entry. */
function fakeNode(opts: { pie?: boolean; value?: number } = {}): { bytes: Buffer; valueOff: number; cliOff: number; sparkValue: number; fnOff: number; env: Record<string, number>; otherCopy: number } {
  const VADDR = 0x400000;
  const f = Buffer.alloc(0x500);
  f.writeUInt32BE(0x7f454c46, 0);
  f[4] = 2; // ELF64
  f[5] = 1; // little-endian
  f.writeUInt16LE(opts.pie ? 3 : 2, 0x10);
  f.writeBigUInt64LE(0x40n, 0x20); // e_phoff
  f.writeUInt16LE(56, 0x36);
  f.writeUInt16LE(1, 0x38);
  // PT_LOAD, RWX, offset 0 -> VADDR, the whole file
  f.writeUInt32LE(1, 0x40);
  f.writeUInt32LE(7, 0x44);
  f.writeBigUInt64LE(0n, 0x48);
  f.writeBigUInt64LE(BigInt(VADDR), 0x50);
  f.writeBigUInt64LE(0x500n, 0x60);
  const cliOff = 0x101;
  f.write('--rehash-snapshot\0', cliOff, 'latin1');
  const nameOff = 0x121;
  f.write('rehash_snapshot\0', nameOff, 'latin1');
  const valueOff = 0x140;
  const defOff = 0x141;
  f[valueOff] = opts.value ?? 1;
  f[defOff] = 1;
  // Flag entries {type, name, valptr, defptr} at 0x200 and 0x240; "sparkplug" is the tail of a longer literal.
  f.writeBigUInt64LE(0n, 0x200);
  f.writeBigUInt64LE(BigInt(VADDR + nameOff), 0x208);
  f.writeBigUInt64LE(BigInt(VADDR + valueOff), 0x210);
  f.writeBigUInt64LE(BigInt(VADDR + defOff), 0x218);
  const longer = 0x161;
  f.write('always_sparkplug\0', longer, 'latin1');
  const sparkValue = 0x180;
  f[sparkValue] = 1;
  f[sparkValue + 1] = 1;
  f.writeBigUInt64LE(BigInt(VADDR + longer + 7), 0x248);
  f.writeBigUInt64LE(BigInt(VADDR + sparkValue), 0x250);
  f.writeBigUInt64LE(BigInt(VADDR + sparkValue + 1), 0x258);
  // Snapshot::ShouldVerifyChecksum's body ("mov $1, %eax; ret") at 0x300, found through a symbol table: section
  // headers at 0x380 (null, .symtab at 0x330, .strtab at 0x2a0).
  const fnOff = 0x300;
  Buffer.from([0xb8, 1, 0, 0, 0, 0xc3]).copy(f, fnOff);
  const sym = '_ZN2v88internal8Snapshot20ShouldVerifyChecksumEPKNS_11StartupDataE';
  f.write(`\0${sym}\0`, 0x2a0 - 0, 'latin1');
  f.writeUInt32LE(1, 0x330 + 24); // second symbol: name at strtab+1
  f.writeBigUInt64LE(BigInt(VADDR + fnOff), 0x330 + 24 + 8);
  f.writeBigUInt64LE(0x380n, 0x28); // e_shoff
  f.writeUInt16LE(64, 0x3a);
  f.writeUInt16LE(3, 0x3c);
  const sh = (i: number, type: number, off: number, size: number, link: number) => {
    const o = 0x380 + i * 64;
    f.writeUInt32LE(type, o + 4);
    f.writeBigUInt64LE(BigInt(off), o + 0x18);
    f.writeBigUInt64LE(BigInt(size), o + 0x20);
    f.writeUInt32LE(link, o + 0x28);
  };
  sh(1, 2, 0x330, 48, 2);
  sh(2, 3, 0x2a0, sym.length + 2, 0);
  // The environment variables' names, each loaded by a `mov $literal, %edi` at 0x4d0; another copy not loaded so.
  const env: Record<string, number> = { NODE_OPTIONS: 0x461, NODE_EXTRA_CA_CERTS: 0x471 };
  let code = 0x4d0;
  for (const [name, off] of Object.entries(env)) {
    f.write(`${name}\0`, off, 'latin1');
    f[code] = 0xbf;
    f.writeUInt32LE(VADDR + off, code + 1);
    code += 5;
  }
  const otherCopy = 0x4b1;
  f.write('NODE_OPTIONS\0', otherCopy, 'latin1');
  return { bytes: f, valueOff, cliOff, sparkValue, fnOff, env, otherCopy };
}

describe('node tuning', () => {
  test('turns rehash_snapshot and sparkplug off through the flag table, empties the literal node passes, and makes ShouldVerifyChecksum return false', () => {
    const { bytes, valueOff, cliOff, sparkValue, fnOff } = fakeNode();
    const r = tuneNode(bytes);
    expect(r.notDone).toBe('');
    expect(r.bytes[valueOff]).toBe(0);
    expect(r.bytes[sparkValue]).toBe(0);
    expect([...r.bytes.subarray(fnOff, fnOff + 6)]).toEqual([0xb8, 0, 0, 0, 0, 0xc3]);
    expect(r.bytes[cliOff]).toBe(0);
    expect(r.bytes.toString('latin1', cliOff + 1, cliOff + 17)).toBe('-rehash-snapshot');
    // The input is left alone.
    expect(bytes[valueOff]).toBe(1);
  });
  test('empties the literals of NODE_OPTIONS and NODE_EXTRA_CA_CERTS that code passes to getenv, and no other copy', () => {
    const { bytes, env, otherCopy } = fakeNode();
    const r = tuneNode(bytes);
    expect(r.notDone).toBe('');
    for (const [name, off] of Object.entries(env)) {
      expect(r.bytes[off]).toBe(0);
      expect(r.bytes.toString('latin1', off + 1, off + name.length)).toBe(name.slice(1));
    }
    expect(r.bytes.toString('latin1', otherCopy, otherCopy + 12)).toBe('NODE_OPTIONS');
  });
  test('leaves the environment alone when the getenv literal is not found exactly once', () => {
    const { bytes, env } = fakeNode();
    bytes[0x4d0] = 0x90; // NODE_OPTIONS is no longer loaded into %edi
    const r = tuneNode(bytes);
    expect(r.notDone).toMatch(/environment: expected one "NODE_OPTIONS" literal passed to getenv, found 0/);
    expect(r.bytes[env.NODE_EXTRA_CA_CERTS!]).toBe(0);
  });
  test('leaves an unexpected binary as it is and says why', () => {
    expect(tuneNode(fakeNode({ pie: true }).bytes).notDone).toMatch(/non-PIE/);
    expect(tuneNode(fakeNode({ value: 0 }).bytes).notDone).toMatch(/not a bool flag that is true/);
    const { bytes } = fakeNode();
    bytes.write('x', 0x121, 'latin1');
    expect(tuneNode(bytes).notDone).toMatch(/one flag-table entry for rehash_snapshot/);
    expect(tuneNode(Buffer.from('not an elf')).notDone).toMatch(/ELF64/);
    // A function body other than "return true" is left alone.
    const other = fakeNode();
    other.bytes[other.fnOff + 5] = 0x90;
    const r = tuneNode(other.bytes);
    expect(r.notDone).toMatch(/ShouldVerifyChecksum is not "return true"/);
    expect(r.bytes[other.fnOff + 1]).toBe(1);
  });
});

describe('portable snapshot mark', () => {
  const metadata = (tag: number, flags: number) => {
    const str = (s: string) => {
      const b = Buffer.alloc(8 + s.length);
      b.writeBigUInt64LE(BigInt(s.length));
      b.write(s, 8, 'latin1');
      return b;
    };
    const tail = Buffer.alloc(8);
    tail.writeUInt32LE(tag, 0);
    tail.writeUInt32LE(flags, 4);
    return Buffer.concat([Buffer.from([0xaa, 1]), str('20.20.2'), str('x64'), str('linux'), tail, Buffer.from('rest of the snapshot')]);
  };
  test('sets "without code cache" in the flags after the platform and the V8 tag', () => {
    const b = markSnapshotPortable(metadata(0xc75c1b23, 0), 0xc75c1b23, 'linux');
    const at = b.indexOf('linux') + 5 + 4;
    expect(b.readUInt32LE(at)).toBe(1);
  });
  test('throws when the metadata is not found exactly once', () => {
    expect(() => markSnapshotPortable(metadata(0x1234, 0), 0x9999, 'linux')).toThrow(/not found exactly once/);
    const twice = Buffer.concat([metadata(0x1234, 0), metadata(0x1234, 0)]);
    expect(() => markSnapshotPortable(twice, 0x1234, 'linux')).toThrow(/not found exactly once/);
  });
});
