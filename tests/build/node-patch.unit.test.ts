/** The byte-level changes the build makes to node and to the SEA blob, on synthetic files of the same shape. */
import { createHash } from 'node:crypto';
import { dropBuiltinCodeCache, markSnapshotPortable, tuneNode, type CheckedSpawn } from '../../build/node-patch.cjs';

const SPAWN_OFF = 0xb40;
const SPAWN_SIZE = 0xa0e;
const FORK_OFF = 0x1600;
const ENVIRON_OFF = 0x1700;
// 11.: Read<StartupData>, ReadArithmetic<char> and ~SnapshotData; the symbol and string tables after them.
const READ_OFF = 0x1800;
const READ_CHARS_OFF = 0x1880;
const DTOR_OFF = 0x1900;
const SYMTAB = 0x1a00;
const STRTAB = 0x1c00;
const FILE_SIZE = 0x2000;

/** A fixed-address ELF64 with one writable PT_LOAD covering the file: literals, a flag value and a flag-table entry. */
function fakeNode(opts: { pie?: boolean; value?: number } = {}): { bytes: Buffer; valueOff: number; cliOff: number; sparkValue: number; fnOff: number; env: Record<string, number>; otherCopy: number; calls: Record<string, number> } {
  const VADDR = 0x400000;
  const f = Buffer.alloc(FILE_SIZE);
  const calls: Record<string, number> = {};
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
  f.writeBigUInt64LE(BigInt(FILE_SIZE), 0x60);
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
  // Snapshot::ShouldVerifyChecksum's body ("mov $1, %eax; ret") at 0x300, and Node's start-up functions at 0x940
  // and 0x980 calling OpenSSL's setup, found through a symbol table: section headers at 0x380 (null, .symtab at
  // SYMTAB, .strtab at STRTAB).
  const fnOff = 0x300;
  Buffer.from([0xb8, 1, 0, 0, 0, 0xc3]).copy(f, fnOff);
  const initOff = 0x940;
  const callees = { OPENSSL_init_crypto: 0x9a0, _ZN4node6crypto6CSPRNGEPvm: 0x9b0, _ZN2v82V816SetEntropySourceEPFbPhmE: 0x9c0 };
  const createEnvOff = 0x980;
  const initCrypto = 0x9d0;
  const miscHandlersOff = 0x9e0;
  // Node's exit handler's body (push %rbp ...) at 0xa00, long enough to hold 10.'s stub after 9.'s exit_group.
  const exitHandlerOff = 0xa00;
  Buffer.from([0x55, 0xb8, 1, 0, 0, 0, 0x48, 0x89, 0xe5]).copy(f, exitHandlerOff);
  calls.exitHandler = exitHandlerOff;
  const detailedPositions = 0x9f8;
  const symbols: [string, number, number][] = [
    ['_ZN2v88internal8Snapshot20ShouldVerifyChecksumEPKNS_11StartupDataE', fnOff, 6],
    ['_ZN4nodeL32InitializeOncePerProcessInternalERKSt6vectorINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEESaIS6_EENS_26ProcessInitializationFlags5FlagsE', initOff, 0x40],
    ...Object.entries(callees).map(([name, off]): [string, number, number] => [name, off, 8]),
    ['_ZN4node16NodeMainInstance21CreateMainEnvironmentEPNS_8ExitCodeE', createEnvOff, 0x18],
    ['_ZN4node6crypto14InitCryptoOnceEPN2v87IsolateE', initCrypto, 8],
    ['_ZN4node22SetIsolateMiscHandlersEPN2v87IsolateERKNS_15IsolateSettingsE', miscHandlersOff, 0x10],
    ['_ZN2v811CpuProfiler38UseDetailedSourcePositionsForProfilingEPNS_7IsolateE', detailedPositions, 8],
    ['_ZN4node33DefaultProcessExitHandlerInternalEPNS_11EnvironmentENS_8ExitCodeE', exitHandlerOff, 0x120],
    ['uv_spawn', SPAWN_OFF, SPAWN_SIZE],
    ['_ZN4node20SnapshotDeserializer4ReadIN2v811StartupDataELPv0ELS4_0EEET_v', READ_OFF, 0x70],
    ['_ZN4node16BlobDeserializerINS_20SnapshotDeserializerEE14ReadArithmeticIcEEvPT_m', READ_CHARS_OFF, 0x60],
    ['_ZN4node12SnapshotDataD1Ev', DTOR_OFF, 0x40],
  ];
  let str = STRTAB + 1;
  symbols.forEach(([name, off, size], i) => {
    f.write(`${name}\0`, str, 'latin1');
    const e = SYMTAB + 24 * (i + 1); // entry 0 is the null symbol
    f.writeUInt32LE(str - STRTAB, e);
    f.writeBigUInt64LE(BigInt(VADDR + off), e + 8);
    f.writeBigUInt64LE(BigInt(size), e + 16);
    str += name.length + 1;
  });
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
  sh(1, 2, SYMTAB, 24 * (symbols.length + 1), 2);
  sh(2, 3, STRTAB, str - STRTAB, 0);
  // The setup's body: `call OPENSSL_init_crypto`, `call CSPRNG; test %al, %al`, `call SetEntropySource`.
  let at = initOff + 4;
  for (const [name, target] of Object.entries(callees)) {
    f[at] = 0xe8;
    f.writeInt32LE(target - (at + 5), at + 1);
    calls[name] = at;
    if (name.includes('CSPRNG')) Buffer.from([0x84, 0xc0]).copy(f, at + 5);
    at += 12;
  }
  // CreateMainEnvironment's `call InitCryptoOnce`.
  f[createEnvOff + 8] = 0xe8;
  f.writeInt32LE(initCrypto - (createEnvOff + 8 + 5), createEnvOff + 9);
  calls.InitCryptoOnce = createEnvOff + 8;
  // SetIsolateMiscHandlers' `call UseDetailedSourcePositionsForProfiling`.
  f[miscHandlersOff + 4] = 0xe8;
  f.writeInt32LE(detailedPositions - (miscHandlersOff + 4 + 5), miscHandlersOff + 5);
  calls.UseDetailedSourcePositionsForProfiling = miscHandlersOff + 4;
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
  // uv_spawn at 0xb40: its prologue (a 0x1f8-byte frame below five pushes), `call fork` and `mov %rax, environ(%rip)`.
  Buffer.from('554889e54157415641554154534881ecf8010000', 'hex').copy(f, SPAWN_OFF);
  const forkCall = SPAWN_OFF + 0x307;
  f[forkCall] = 0xe8;
  f.writeInt32LE(FORK_OFF - (forkCall + 5), forkCall + 1);
  calls.fork = forkCall;
  const store = SPAWN_OFF + 0x925;
  Buffer.from([0x48, 0x89, 0x05]).copy(f, store);
  f.writeInt32LE(ENVIRON_OFF - (store + 7), store + 3);
  // 11.: Read<StartupData>'s prologue and copy (this in %r12, the size in %rdi), its calls' targets filled in.
  Buffer.from('554889e5415541544989fc', 'hex').copy(f, READ_OFF);
  const copy = READ_OFF + 0x3e;
  Buffer.from('48637dec0f8500000000' + '85ff7e2c' + 'e800000000486355ec4c89e74889c64989c5e800000000', 'hex').copy(f, copy);
  calls.newArray = copy + 14;
  f.writeInt32LE(READ_CHARS_OFF - (copy + 14 + 23), copy + 14 + 19);
  // ReadArithmetic<char>: the source from read_total (0x8) and sink's data (0x18), the count added to read_total.
  Buffer.from('488b73084c89ef48037318', 'hex').copy(f, READ_CHARS_OFF + 0x2c);
  Buffer.from('4c016308', 'hex').copy(f, READ_CHARS_OFF + 0x50);
  // ~SnapshotData: delete[] of field 0x78 when owned.
  Buffer.from('8b074889fb85c0750e488b7f784885ff7405e800000000', 'hex').copy(f, DTOR_OFF + 0xb);
  calls.deleteBlob = DTOR_OFF + 0xb + 18;
  return { bytes: f, valueOff, cliOff, sparkValue, fnOff, env, otherCopy, calls };
}

/** tuneNode, with the fake's uv_spawn as the one 10. was checked against. */
const tuneFake = (bytes: Buffer) => {
  const checked: CheckedSpawn = { sha256: createHash('sha256').update(bytes.subarray(SPAWN_OFF, SPAWN_OFF + SPAWN_SIZE)).digest('hex'), size: SPAWN_SIZE, forkCall: 0x307, environStore: 0x925 };
  return tuneNode(bytes, bytes, checked);
};

describe('node tuning', () => {
  test('turns rehash_snapshot and sparkplug off through the flag table, empties the literal node passes, and makes ShouldVerifyChecksum return false', () => {
    const { bytes, valueOff, cliOff, sparkValue, fnOff } = fakeNode();
    const r = tuneFake(bytes);
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
    const r = tuneFake(bytes);
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
    const r = tuneFake(bytes);
    expect(r.notDone).toMatch(/environment: expected one "NODE_OPTIONS" literal passed to getenv, found 0/);
    expect(r.bytes[env.NODE_EXTRA_CA_CERTS!]).toBe(0);
  });
  test("replaces Node's start-up calls into OpenSSL: its setup and the seeded check return 1, V8 gets no entropy source, no crypto setup", () => {
    const { bytes, calls } = fakeNode();
    const r = tuneFake(bytes);
    expect(r.notDone).toBe('');
    const at = (name: string) => [...r.bytes.subarray(calls[name]!, calls[name]! + 5)];
    expect(at('OPENSSL_init_crypto')).toEqual([0xb8, 1, 0, 0, 0]);
    expect(at('_ZN4node6crypto6CSPRNGEPvm')).toEqual([0xb8, 1, 0, 0, 0]);
    expect(at('_ZN2v82V816SetEntropySourceEPFbPhmE')).toEqual([0x0f, 0x1f, 0x44, 0, 0]);
    expect(at('InitCryptoOnce')).toEqual([0x0f, 0x1f, 0x44, 0, 0]);
    // 8.: no detailed source positions for the profiler.
    expect(at('UseDetailedSourcePositionsForProfiling')).toEqual([0x0f, 0x1f, 0x44, 0, 0]);
  });
  test('makes the exit handler an exit_group of its second argument', () => {
    const { bytes, calls } = fakeNode();
    const r = tuneFake(bytes);
    expect(r.notDone).toBe('');
    expect([...r.bytes.subarray(calls.exitHandler!, calls.exitHandler! + 9)]).toEqual([0x89, 0xf7, 0xb8, 0xe7, 0, 0, 0, 0x0f, 0x05]);
    // The check of the result is kept.
    expect([...r.bytes.subarray(calls._ZN4node6crypto6CSPRNGEPvm! + 5, calls._ZN4node6crypto6CSPRNGEPvm! + 7)]).toEqual([0x84, 0xc0]);
  });
  test("starts child processes with vfork: uv_spawn's fork call goes to a stub in the exit handler's dead body", () => {
    const { bytes, calls } = fakeNode();
    const r = tuneFake(bytes);
    expect(r.notDone).toBe('');
    const VADDR = 0x400000;
    const home = calls.exitHandler! + 16;
    // The call now goes to the stub; the exit handler still starts with exit_group.
    expect(r.bytes[calls.fork!]).toBe(0xe8);
    expect(calls.fork! + 5 + r.bytes.readInt32LE(calls.fork! + 1)).toBe(home);
    expect(r.bytes[calls.exitHandler!]).toBe(0x89);
    // The stub: environ saved and restored at its address, uv_spawn's whole frame (0x1f8 + five pushes) copied
    // aside and back, the vfork syscall, and fork as the fallback.
    expect(r.bytes.readUInt32LE(home + 0x06)).toBe(VADDR + ENVIRON_OFF);
    expect(r.bytes.readUInt32LE(home + 0x40)).toBe(VADDR + ENVIRON_OFF);
    expect(r.bytes.readInt32LE(home + 0x0d)).toBe(-0x220);
    expect(r.bytes.readInt32LE(home + 0x4a)).toBe(-0x220);
    expect(r.bytes.readUInt32LE(home + 0x1d)).toBe(0x220);
    expect(r.bytes.readUInt32LE(home + 0x4f)).toBe(0x220);
    expect(r.bytes.subarray(home + 0x2a, home + 0x31).toString('hex')).toBe('b83a0000000f05');
    expect(home + 0x65 + r.bytes.readInt32LE(home + 0x61)).toBe(FORK_OFF);
  });
  test('leaves uv_spawn calling fork when its code is not the one the stub was checked against', () => {
    const { bytes, calls } = fakeNode();
    // The fake's uv_spawn is not libuv's: the recorded digest does not match.
    let r = tuneNode(bytes);
    expect(r.notDone).toMatch(/vfork spawn: uv_spawn is not the code this change was checked against/);
    expect(calls.fork! + 5 + r.bytes.readInt32LE(calls.fork! + 1)).toBe(FORK_OFF);
    // Nor when the exit handler could not be made an exit_group (the stub's home).
    const noExit = fakeNode();
    const exitHandlerSize = SYMTAB + 24 * 10 + 16; // its symbol's size field
    noExit.bytes.writeBigUInt64LE(8n, exitHandlerSize);
    r = tuneFake(noExit.bytes);
    expect(r.notDone).toMatch(/fast exit: DefaultProcessExitHandlerInternal is not in the file, or too short/);
    expect(noExit.calls.fork! + 5 + r.bytes.readInt32LE(noExit.calls.fork! + 1)).toBe(FORK_OFF);
    // Or when the stub does not fit after the exit_group.
    const short = fakeNode();
    short.bytes.writeBigUInt64LE(0x40n, exitHandlerSize);
    r = tuneFake(short.bytes);
    expect(r.notDone).toBe('vfork spawn: the exit handler is too short to hold the stub');
    expect(r.bytes[short.calls.exitHandler!]).toBe(0x89);
    expect(short.calls.fork! + 5 + r.bytes.readInt32LE(short.calls.fork! + 1)).toBe(FORK_OFF);
  });
  test("changes none of OpenSSL's start-up calls when one is not as expected", () => {
    const twice = fakeNode();
    // A second call to CSPRNG in the function.
    const extra = twice.calls.OPENSSL_init_crypto! + 7;
    twice.bytes[extra] = 0xe8;
    twice.bytes.writeInt32LE(0x9b0 - (extra + 5), extra + 1);
    let r = tuneFake(twice.bytes);
    expect(r.notDone).toMatch(/openssl at start: expected one call to CSPRNG in InitializeOncePerProcessInternal, found 2/);
    expect(r.bytes[twice.calls.OPENSSL_init_crypto!]).toBe(0xe8);
    const untested = fakeNode();
    untested.bytes[untested.calls._ZN4node6crypto6CSPRNGEPvm! + 5] = 0x90;
    r = tuneFake(untested.bytes);
    expect(r.notDone).toMatch(/the result of CSPRNG is not tested as expected/);
    expect(r.bytes[untested.calls.OPENSSL_init_crypto!]).toBe(0xe8);
    expect(r.bytes[untested.calls._ZN2v82V816SetEntropySourceEPFbPhmE!]).toBe(0xe8);
    expect(r.bytes[untested.calls.InitCryptoOnce!]).toBe(0xe8);
    // Changes of another kind are independent.
    expect(r.bytes[untested.calls.UseDetailedSourcePositionsForProfiling!]).toBe(0x0f);
  });
  test("makes the snapshot's startup data point into the blob instead of a copy, and not deleted", () => {
    const { bytes, calls } = fakeNode();
    const r = tuneFake(bytes);
    expect(r.notDone).toBe('');
    // new[] + ReadArithmetic<char> became: %r13 = read_total + sink's data; read_total += size; an 8-byte nop.
    expect(r.bytes.subarray(calls.newArray!, calls.newArray! + 23).toString('hex')).toBe('4d8b6c24084d036c241849017c24080f1f840000000000');
    expect([...r.bytes.subarray(calls.deleteBlob!, calls.deleteBlob! + 5)]).toEqual([0x0f, 0x1f, 0x44, 0, 0]);
  });
  test('leaves the copy and the delete as they are when either is not as checked', () => {
    const other = fakeNode();
    // ReadArithmetic<char> reads from elsewhere.
    other.bytes[READ_CHARS_OFF + 0x2c + 3] = 0x10;
    let r = tuneFake(other.bytes);
    expect(r.notDone).toBe('snapshot in place: ReadArithmetic<char> does not read as checked');
    expect(r.bytes[other.calls.newArray!]).toBe(0xe8);
    expect(r.bytes[other.calls.deleteBlob!]).toBe(0xe8);
    const noDelete = fakeNode();
    noDelete.bytes[DTOR_OFF + 0xb + 12] = 0x70; // another field is deleted
    r = tuneFake(noDelete.bytes);
    expect(r.notDone).toBe('snapshot in place: expected one delete of the startup data in ~SnapshotData, found 0');
    expect(r.bytes[noDelete.calls.newArray!]).toBe(0xe8);
    const elsewhere = fakeNode();
    elsewhere.bytes.writeInt32LE(0, elsewhere.calls.newArray! + 19); // the copy calls something else
    r = tuneFake(elsewhere.bytes);
    expect(r.notDone).toBe('snapshot in place: the copy is not made by ReadArithmetic<char>');
    expect(r.bytes[elsewhere.calls.deleteBlob!]).toBe(0xe8);
  });
  test('leaves an unexpected binary as it is and says why', () => {
    expect(tuneFake(fakeNode({ pie: true }).bytes).notDone).toMatch(/non-PIE/);
    expect(tuneFake(fakeNode({ value: 0 }).bytes).notDone).toMatch(/not a bool flag that is true/);
    const { bytes } = fakeNode();
    bytes.write('x', 0x121, 'latin1');
    expect(tuneFake(bytes).notDone).toMatch(/one flag-table entry for rehash_snapshot/);
    expect(tuneFake(Buffer.from('not an elf')).notDone).toMatch(/ELF64/);
    // A function body other than "return true" is left alone.
    const other = fakeNode();
    other.bytes[other.fnOff + 5] = 0x90;
    const r = tuneFake(other.bytes);
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

describe("built-in modules' code cache", () => {
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  const str = (s: string | Buffer) => Buffer.concat([u64(s.length), Buffer.from(s)]);
  const codeCache = Buffer.concat([u64(2), str('internal/bootstrap/realm'), str(Buffer.alloc(300, 7)), str('fs'), str(Buffer.alloc(40, 9))]);
  // The snapshot before its code cache: V8's data, Node's serialized state (here a look-alike of a vector).
  const before = Buffer.concat([Buffer.from([0x61, 0x1b, 0xd5, 0x00]), u64(1), str('not/at/the/end'), str('xyz'), Buffer.alloc(64, 3)]);
  const sea = (snapshot: Buffer, flags = 3) => {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(0x143da20, 0);
    head.writeUInt32LE(flags, 4);
    return Buffer.concat([head, str('/build/main.cjs'), str(snapshot)]);
  };
  test('empties the vector at the end of the snapshot and shortens the length in the SEA header', () => {
    const out = dropBuiltinCodeCache(sea(Buffer.concat([before, codeCache])));
    expect(out).toEqual(sea(Buffer.concat([before, u64(0)])));
  });
  test('throws when the blob holds more than a snapshot or no code cache is found', () => {
    expect(() => dropBuiltinCodeCache(sea(Buffer.concat([before, codeCache]), 3 | 4))).toThrow(/more than a snapshot/);
    expect(() => dropBuiltinCodeCache(sea(before))).toThrow(/not found exactly once/);
    const cut = sea(Buffer.concat([before, codeCache]));
    expect(() => dropBuiltinCodeCache(cut.subarray(0, cut.length - 1))).toThrow(/last item/);
  });
});
