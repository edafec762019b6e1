// Two changes to what `npm run build` produces, made in bytes because a single-executable app cannot be given V8
// flags (argv goes to the app, NODE_OPTIONS is the runtime's) and Node 20's SEA config cannot ask for them.
//
// 1. Faster start (the node binary): `--rehash-snapshot` off. Node sets it at every start
//    (SetFlagsFromString("--rehash-snapshot")), so V8 derives a fresh string-hash secret and rehashes every table of
//    the snapshot: since Node 20.20 that secret is found by Miller-Rabin tests of random 64-bit candidates, ~4-5 ms
//    of a ~25 ms start here, paid by every plugin call. Off, the hash seed baked into the snapshot at build time is
//    used. The cost: the string-hash secret is the same in every run of one build, so hash-flooding input could be
//    precomputed; our input is the runtime's (root's) config, at most 4 MiB, so that is not a threat model here.
//    How: the flag's initial value in V8's flag struct becomes false, found through V8's flag table (an entry holds
//    pointers to the flag's name, value and default), so no symbols are needed; and the literal "--rehash-snapshot"
//    that Node passes becomes "" (its first byte NUL; only a literal starting exactly there is affected). The SEA
//    blob must then be built by the patched binary: V8 checks the blob's flag hash at start.
//
// 2. A portable snapshot (the SEA blob). Node refuses a user-land snapshot whose V8 "cache version tag" differs
//    from the running one, and that tag hashes the CPU features V8 detected (SSE4, AVX2, BMI, LZCNT, CET...): a
//    snapshot built on one machine did not start at all on a CPU with other features ("Failed to load the startup
//    snapshot ... different V8 configurations", exit 14), fatal for a plugin copied to every node of a cluster.
//    Node skips that check for snapshots marked "without code cache", because the startup snapshot itself holds
//    no machine code (bytecode and heap objects only; V8 checks its version) and V8 checks each code cache entry
//    on its own (version and flags). We set that mark in the blob's metadata and keep the code cache.
//
// 3. No baseline compiler (the node binary): `--sparkplug` off, found and changed as `--rehash-snapshot` is.
//
// 4. No checksum of the V8 snapshot at start (the node binary): V8 adds up the whole ~5 MB startup blob on every
//    start (Snapshot::ShouldVerifyChecksum is compiled as "return true"), ~10% of a short plugin call's
//    instructions. It guards against a corrupted snapshot in the file; the executable's integrity is the
//    package's to check, and a damaged snapshot fails deserialization anyway. The function, found by its symbol
//    in the unstripped node, is made to return false (its body must be exactly "mov $1, %eax; ret").
//
// 5. The runtime's environment does not configure Node (the node binary). Runtimes pass their whole environment
//    to plugins, and Node reads two variables before any of our code runs: NODE_OPTIONS (a user's
//    `--require ./x.js` made every plugin call fail with Node's stack trace and no CNI error; `--inspect` opened
//    a debugger port or failed "not allowed") and NODE_EXTRA_CA_CERTS (the bundle is parsed at every start:
//    ~100 ms per call here; we make no TLS connections). Each name's literal that Node's startup passes to getenv
//    (loaded with `mov $literal, %edi`, found by scanning the executable segments for that instruction) becomes ""
//    (its first byte NUL), so getenv finds nothing. Other copies of the name (messages, tables) are left alone.
//
// 6. No OpenSSL at start (the node binary). Node's per-process setup loads OpenSSL's configuration, instantiates
//    its random generator once to check that it is seeded (which fetches every cipher and RNG of the default
//    provider) and hands V8 that generator as its entropy source; a start from a snapshot then runs Node's crypto
//    setup (OPENSSL_init_ssl: the configuration again, TLS's tables, engines). ~8.7 M instructions, 10% of a
//    plugin call's start, for a process that hashes a few names and reads a few random bytes, both done without
//    OpenSSL (lib/hash.ts, lib/net/mac.ts). In InitializeOncePerProcessInternal the call to OPENSSL_init_crypto
//    becomes `mov $1, %eax` (its result is not used), the seeded check's call to CSPRNG `mov $1, %eax` (the CHECK
//    then sees true in %al), the call to V8::SetEntropySource a 5-byte no-op (V8 then seeds itself from
//    /dev/urandom, as it does without Node), and in NodeMainInstance::CreateMainEnvironment the call to
//    crypto::InitCryptoOnce a no-op. node:crypto's hashes still work (the installer's file digests): OpenSSL
//    initialises itself, with its default configuration, at its first use. TLS would miss Node's setup; nothing
//    here makes a TLS connection. Found through the unstripped node's symbols: each function's extent, and each
//    callee's address as the target of exactly one `call rel32` in it; all changes or none.
//
// 7. No code cache of Node's built-in modules in the snapshot (the SEA blob). The builder stores the compiled
//    code of all ~320 built-in modules after the snapshot (2.8 MB of a 5.5 MB blob), and every start copies it
//    into vectors (5.3 M instructions, plus the page faults of reading and copying 2.8 MB) for modules that a
//    plugin call never compiles: what it runs was loaded when the snapshot was made. A module first required
//    later compiles from its source (embedded in node), a little slower than from the cache. The vector is the
//    snapshot's last item, and the snapshot the blob's: it becomes empty, and the blob's length of the snapshot
//    shrinks with it.
//
// 8. No source positions for the CPU profiler at start (the node binary). Node asks V8 for detailed source
//    positions for profiling on every isolate (SetIsolateMiscHandlers), and V8 then walks the whole heap to
//    compute them for every bytecode array the snapshot holds (3 M instructions, 4% of a start) and keeps
//    computing them at every compile. Without the call V8 computes a function's positions when something asks
//    for them (a stack trace, a profile), as it does by default. The call becomes a 5-byte no-op, found as 6.'s.
//
// 9. process.exit() ends the process at once (the node binary). After JavaScript's 'exit' listeners, Node's exit
//    handler stops the tracing agent, shuts libuv's thread pool and V8's platform down (joining their threads)
//    and calls exit(), which runs every static destructor: ~0.7 ms between a plugin's result and its exit, which
//    the runtime waits for. Our output is written synchronously (stdout and stderr are pipes or files; the
//    trace is appendFileSync), so nothing is left to flush. DefaultProcessExitHandlerInternal(env, code) starts
//    with `mov %esi, %edi; mov $231, %eax; syscall` (exit_group(code)) instead. A process that ends without
//    process.exit() (cnitool, the installer) returns from main as before.
//
// 10. A child process starts with vfork, not fork (the node binary). libuv's uv_spawn forks: the kernel copies the
//    page tables of Node's ~60 MB, the child's exec tears that copy down while uv_spawn waits for the exec, and
//    every page the parent writes afterwards faults once (copy-on-write). That held a plugin's one thread ~1.6 ms
//    per process it starts (4 per bridge ADD); with vfork, ~0.8 ms. vfork's child runs in the parent's memory
//    until its exec, and what libuv's child code writes there would be the parent's: its spill slots in
//    uv_spawn's frame (one holds the lock uv_spawn releases after the fork) and `environ` (set to the child's
//    environment before execvp). So uv_spawn's `call fork` goes to a stub that copies uv_spawn's frame and
//    environ aside, lowers the stack pointer 32 KB (the child's calls run below the copy), makes the vfork
//    syscall and, in the parent, puts the frame and environ back: what the parent sees is what fork leaves it.
//    The child touches nothing else (signal dispositions and descriptors are its own under vfork; it ends in
//    execvp or in writing errno to uv_spawn's pipe and _exit). vfork failing falls back to fork. This holds only
//    for the code it was checked against: uv_spawn's bytes must have the recorded SHA-256 (libuv 1.46 in Node
//    20.20.2 for x64, its child code inlined, locals addressed from %rbp), else nothing changes. The stub lives in
//    the exit handler's body, dead after 9.'s exit_group.
//
// 11. V8 reads the startup snapshot where it lies (the node binary). Node copied V8's part of the snapshot (~2.6
//    MB) out of the SEA blob into a fresh buffer before deserializing it (SnapshotDeserializer::Read<StartupData>:
//    new[] and memcpy): ~590 page faults of new memory, a fifth of a start's, and the copy, ~2.5-3 ms of a ~25 ms
//    start here. The SEA blob is the executable's own mapping (postject's note in a read-only PT_LOAD), there for
//    the process's life, and V8 only reads the startup data: Read now returns a pointer into the blob (the
//    reader's position, `read_total`, advanced past it as the copy did), and ~SnapshotData no longer deletes that
//    pointer (new[]'d before, now the file's). The cost, for a node no one runs so: a snapshot loaded with
//    `--snapshot-blob FILE` is read into a vector freed after parsing, so its data would dangle; an SEA never
//    reads that option, and the build runs the tuned node only to build a snapshot, never to load one. A snapshot
//    the tuned node builds (--build-snapshot, the SEA config) keeps its buffer to the end instead of freeing it.
//    Checked by bytes: Read's size in %rdi and `this` in %r12 around `call new[]` and `call ReadArithmetic<char>`,
//    ReadArithmetic<char> reading from `sink.data() + read_total` (fields 0x18 and 0x8) and adding the count to
//    read_total, and the destructor's `delete[]` of field 0x78 guarded by the ownership field; all or none.
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');

const PT_LOAD = 1;
const PF_X = 1;
const PF_W = 2;

/**
 * Further V8 flags turned off (see 3. above): Sparkplug, the baseline compiler, compiles functions to machine
 * code after a few calls; a plugin process lives tens of ms and is over before that pays back (it was ~8% of a
 * bridge ADD's instructions).
 */
const OFF = ['sparkplug'];

/** Variables Node reads at startup that the runtime's environment must not set for us (see 5. above). */
const IGNORED_ENV = ['NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS'];

class Elf {
  constructor(bytes) {
    const f = (this.f = bytes);
    if (f.readUInt32BE(0) !== 0x7f454c46 || f[4] !== 2 || f[5] !== 1) throw new Error('not a little-endian ELF64 file');
    // Only a fixed-address executable holds the flag table's pointers in its file (a PIE's are relocated at load).
    if (f.readUInt16LE(0x10) !== 2) throw new Error('not a fixed-address (non-PIE) executable');
    const phoff = Number(f.readBigUInt64LE(0x20));
    const phsz = f.readUInt16LE(0x36);
    this.segs = [];
    for (let i = 0; i < f.readUInt16LE(0x38); i++) {
      const o = phoff + i * phsz;
      if (f.readUInt32LE(o) !== PT_LOAD) continue;
      this.segs.push({ flags: f.readUInt32LE(o + 4), off: Number(f.readBigUInt64LE(o + 8)), vaddr: Number(f.readBigUInt64LE(o + 16)), filesz: Number(f.readBigUInt64LE(o + 32)) });
    }
  }
  offOf(va) {
    const s = this.segs.find((x) => va >= x.vaddr && va < x.vaddr + x.filesz);
    return s ? va - s.vaddr + s.off : -1;
  }
  vaOf(off) {
    const s = this.segs.find((x) => off >= x.off && off < x.off + x.filesz);
    return s ? off - s.off + s.vaddr : -1;
  }
  /** File offsets of NUL-terminated literals equal to `s` that start after a NUL. */
  literals(s) {
    const needle = Buffer.from(`\0${s}\0`, 'latin1');
    const out = [];
    for (let at = this.f.indexOf(needle); at >= 0; at = this.f.indexOf(needle, at + 1)) out.push(at + 1);
    return out;
  }
  /** The flag-table entry of `name`: file offsets of its value and default. */
  flag(name) {
    // The name may be the tail of a longer literal ("sparkplug" of "always_sparkplug"): every place counts.
    const needle = Buffer.from(`${name}\0`, 'latin1');
    const nameVas = new Set();
    for (let at = this.f.indexOf(needle); at >= 0; at = this.f.indexOf(needle, at + 1)) nameVas.add(BigInt(this.vaOf(at)));
    const hits = [];
    for (const s of this.segs.filter((x) => x.flags & PF_W)) {
      for (let p = s.off + ((8 - (s.off % 8)) % 8); p + 24 <= s.off + s.filesz; p += 8) {
        if (nameVas.has(this.f.readBigUInt64LE(p))) hits.push([Number(this.f.readBigUInt64LE(p + 8)), Number(this.f.readBigUInt64LE(p + 16))]);
      }
    }
    if (hits.length !== 1) throw new Error(`expected one flag-table entry for ${name}, found ${hits.length}`);
    const [value, def] = hits[0].map((va) => this.offOf(va));
    if (value < 0 || def < 0) throw new Error(`flag ${name} points outside the file`);
    return { value, def };
  }
  /** File offsets of the NUL-delimited literals `s` whose address code loads with `mov $imm32, %edi`. */
  literalsLoadedIntoEdi(s) {
    const vas = new Map(this.literals(s).map((off) => [this.vaOf(off), off]));
    const found = new Set();
    for (const seg of this.segs.filter((x) => x.flags & PF_X)) {
      const end = seg.off + seg.filesz - 5;
      for (let at = this.f.indexOf(0xbf, seg.off); at >= 0 && at <= end; at = this.f.indexOf(0xbf, at + 1)) {
        const off = vas.get(this.f.readUInt32LE(at + 1));
        if (off !== undefined) found.add(off);
      }
    }
    return [...found];
  }
  /** The address of a symbol from the section headers' symbol table (undefined when stripped or absent). */
  symbol(name) {
    return this.symbolWithSize(name)?.va;
  }
  /** Address and size of a symbol (undefined when stripped or absent). */
  symbolWithSize(name) {
    const f = this.f;
    const shoff = Number(f.readBigUInt64LE(0x28));
    const shsz = f.readUInt16LE(0x3a);
    const shnum = f.readUInt16LE(0x3c);
    const section = (i) => {
      const o = shoff + i * shsz;
      return { type: f.readUInt32LE(o + 4), off: Number(f.readBigUInt64LE(o + 0x18)), size: Number(f.readBigUInt64LE(o + 0x20)), link: f.readUInt32LE(o + 0x28) };
    };
    const SHT_SYMTAB = 2;
    const want = Buffer.from(`${name}\0`, 'latin1');
    for (let i = 0; shoff && i < shnum; i++) {
      const sec = section(i);
      if (sec.type !== SHT_SYMTAB) continue;
      const str = section(sec.link);
      for (let p = sec.off; p + 24 <= sec.off + sec.size; p += 24) {
        const at = str.off + f.readUInt32LE(p);
        if (f[at] === want[0] && f.compare(want, 0, want.length, at, at + want.length) === 0) return { va: Number(f.readBigUInt64LE(p + 8)), size: Number(f.readBigUInt64LE(p + 16)) };
      }
    }
    return undefined;
  }
  boolFlagOff(name) {
    const { value, def } = this.flag(name);
    if (this.f[value] !== 1 || this.f[def] !== 1) throw new Error(`${name} is not a bool flag that is true here`);
    return () => (this.f[value] = 0);
  }
}

/** Node's start-up functions, and their calls that 6. and 8. above skip or answer. */
const PER_PROCESS_INIT = '_ZN4nodeL32InitializeOncePerProcessInternalERKSt6vectorINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEESaIS6_EENS_26ProcessInitializationFlags5FlagsE';
const CREATE_MAIN_ENVIRONMENT = '_ZN4node16NodeMainInstance21CreateMainEnvironmentEPNS_8ExitCodeE';
const SET_ISOLATE_MISC_HANDLERS = '_ZN4node22SetIsolateMiscHandlersEPN2v87IsolateERKNS_15IsolateSettingsE';
const MOV_EAX_1 = Buffer.from([0xb8, 0x01, 0x00, 0x00, 0x00]);
const NOP5 = Buffer.from([0x0f, 0x1f, 0x44, 0x00, 0x00]);
const OPENSSL_AT_START = [
  { in: [PER_PROCESS_INIT, 'InitializeOncePerProcessInternal'], callee: ['OPENSSL_init_crypto', 'OPENSSL_init_crypto'], becomes: MOV_EAX_1 },
  // Its result is tested as a bool in %al (`test %al, %al`) by Node's CHECK.
  { in: [PER_PROCESS_INIT, 'InitializeOncePerProcessInternal'], callee: ['_ZN4node6crypto6CSPRNGEPvm', 'CSPRNG'], becomes: MOV_EAX_1, followedBy: Buffer.from([0x84, 0xc0]) },
  { in: [PER_PROCESS_INIT, 'InitializeOncePerProcessInternal'], callee: ['_ZN2v82V816SetEntropySourceEPFbPhmE', 'V8::SetEntropySource'], becomes: NOP5 },
  { in: [CREATE_MAIN_ENVIRONMENT, 'CreateMainEnvironment'], callee: ['_ZN4node6crypto14InitCryptoOnceEPN2v87IsolateE', 'InitCryptoOnce'], becomes: NOP5 },
];
const PROFILER_POSITIONS = [
  { in: [SET_ISOLATE_MISC_HANDLERS, 'SetIsolateMiscHandlers'], callee: ['_ZN2v811CpuProfiler38UseDetailedSourcePositionsForProfilingEPNS_7IsolateE', 'UseDetailedSourcePositionsForProfiling'], becomes: NOP5 },
];

/** The file offsets of the `call rel32` instructions in [from, from + size) (file offsets) that call `targetVa`. */
function callsTo(elf, from, size, targetVa) {
  const out = [];
  for (let at = elf.f.indexOf(0xe8, from); at >= 0 && at + 5 <= from + size; at = elf.f.indexOf(0xe8, at + 1)) {
    if (elf.vaOf(at) + 5 + elf.f.readInt32LE(at + 1) === targetVa) out.push(at);
  }
  return out;
}

/** Changes to calls (6. and 8. above), all or none: each a function applying one. Throws saying what was not as expected. */
function callChanges(elf, symbols, changes) {
  // Each symbol is [its name in the table, how messages call it].
  return changes.map(({ in: [fnSymbol, fnName], callee: [calleeSymbol, callee], becomes, followedBy }) => {
    const fn = symbols.symbolWithSize(fnSymbol);
    if (!fn) throw new Error(`no symbol ${fnName}`);
    const from = elf.offOf(fn.va);
    if (from < 0 || !fn.size) throw new Error(`${fnName} is not in the file`);
    const va = symbols.symbol(calleeSymbol);
    if (va === undefined) throw new Error(`no symbol ${callee}`);
    const calls = callsTo(elf, from, fn.size, va);
    if (calls.length !== 1) throw new Error(`expected one call to ${callee} in ${fnName}, found ${calls.length}`);
    const at = calls[0];
    if (followedBy && elf.f.compare(followedBy, 0, followedBy.length, at + 5, at + 5 + followedBy.length) !== 0) throw new Error(`the result of ${callee} is not tested as expected`);
    return () => becomes.copy(elf.f, at);
  });
}

const SHOULD_VERIFY = '_ZN2v88internal8Snapshot20ShouldVerifyChecksumEPKNS_11StartupDataE';
const EXIT_HANDLER = '_ZN4node33DefaultProcessExitHandlerInternalEPNS_11EnvironmentENS_8ExitCodeE';
// mov %esi, %edi (the exit code, its second argument); mov $231, %eax (exit_group); syscall
const EXIT_GROUP = Buffer.from([0x89, 0xf7, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05]);
// 10.: the uv_spawn the stub was checked against, and where in it the fork call and the store to environ are.
const UV_SPAWN = 'uv_spawn';
const CHECKED_UV_SPAWN = { sha256: 'b3558b4d1602ed4d842fadc5fa3cb43cd0427817e60e167940bfc85763d12170', size: 0xa0e, forkCall: 0x307, environStore: 0x925 };
// pop %r10; mov ENV, %r9; lea -FRAME(%rbp), %rsi; lea -0x1400(%rsp), %rdi; mov %rdi, %r8; mov $FRAME, %ecx;
// rep movsb; sub $0x8000, %rsp; mov $58, %eax; syscall; test %eax, %eax; jz child; add $0x8000, %rsp;
// mov %r9, ENV; mov %r8, %rsi; lea -FRAME(%rbp), %rdi; mov $FRAME, %ecx; rep movsb; push %r10;
// cmp $-4095, %rax; jae failed; ret; failed: jmp fork; child: push %r10; ret
const VFORK_STUB = Buffer.from('415a4c8b0c2500000000488db500000000488dbc2400ecffff4989f8b900000000f3a44881ec00800000b83a0000000f0585c074304881c4008000004c890c25000000004c89c6488dbd00000000b900000000f3a44152483d01f0ffff7301c3e9000000004152c3', 'hex');

/** The stub (10. above) for a stub at `va`, environ at `environVa`, fork at `forkVa`, a caller frame of `frame` bytes. */
function vforkStub(va, environVa, forkVa, frame) {
  const b = Buffer.from(VFORK_STUB);
  b.writeUInt32LE(environVa, 0x06);
  b.writeUInt32LE(environVa, 0x40);
  b.writeInt32LE(-frame, 0x0d);
  b.writeInt32LE(-frame, 0x4a);
  b.writeUInt32LE(frame, 0x1d);
  b.writeUInt32LE(frame, 0x4f);
  b.writeInt32LE(forkVa - (va + 0x65), 0x61);
  return b;
}

/** 10. above: returns the change, or throws saying what is not as checked. `exitHandler` is 9.'s function. */
function vforkSpawn(elf, symbols, exitHandler, checked, sha256) {
  const fn = symbols.symbolWithSize(UV_SPAWN);
  if (!fn) throw new Error('no symbol uv_spawn');
  const from = elf.offOf(fn.va);
  if (from < 0 || fn.size !== checked.size || sha256(elf.f.subarray(from, from + fn.size)) !== checked.sha256) throw new Error('uv_spawn is not the code this change was checked against');
  // Its frame: push %rbp; mov %rsp, %rbp; five pushes; sub $imm32, %rsp.
  const prologue = Buffer.from('554889e54157415641554154534881ec', 'hex');
  if (elf.f.compare(prologue, 0, prologue.length, from, from + prologue.length) !== 0) throw new Error("uv_spawn's prologue is not as checked");
  const frame = elf.f.readUInt32LE(from + prologue.length) + 5 * 8;
  const call = from + checked.forkCall;
  const store = from + checked.environStore;
  if (elf.f[call] !== 0xe8 || elf.f.readUIntBE(store, 3) !== 0x488905) throw new Error('uv_spawn has no fork call or environ store where checked');
  const forkVa = elf.vaOf(call) + 5 + elf.f.readInt32LE(call + 1);
  const environVa = elf.vaOf(store) + 7 + elf.f.readInt32LE(store + 3);
  // The stub addresses environ as a sign-extended 32-bit absolute (a fixed-address executable's .bss is low).
  if (environVa >= 2 ** 31) throw new Error('environ is beyond a 32-bit absolute address');
  const home = exitHandler.va + 16;
  if (exitHandler.size < 16 + VFORK_STUB.length) throw new Error('the exit handler is too short to hold the stub');
  return () => {
    vforkStub(home, environVa, forkVa, frame).copy(elf.f, elf.offOf(home));
    elf.f.writeInt32LE(home - (elf.vaOf(call) + 5), call + 1);
  };
}

// 11.: In Read<v8::StartupData>: movslq -0x14(%rbp),%rdi; jne cold; test %edi,%edi; jle fail; call new[];
// movslq -0x14(%rbp),%rdx; mov %r12,%rdi; mov %rax,%rsi; mov %rax,%r13; call ReadArithmetic<char> ("__": any byte).
const READ_STARTUP_DATA = ['_ZN4node20SnapshotDeserializer4ReadIN2v811StartupDataELPv0ELS4_0EEET_v', 'SnapshotDeserializer::Read<StartupData>'];
const READ_CHARS = ['_ZN4node16BlobDeserializerINS_20SnapshotDeserializerEE14ReadArithmeticIcEEvPT_m', 'ReadArithmetic<char>'];
const SNAPSHOT_DATA_DTOR = ['_ZN4node12SnapshotDataD1Ev', '~SnapshotData'];
const COPY_OUT = { before: '48637dec0f85________85ff7e__', at: 'e8________486355ec4c89e74889c64989c5e8________' };
// mov 0x8(%r12),%r13 (read_total); add 0x18(%r12),%r13 (sink's data); add %rdi,0x8(%r12); an 8-byte nop. %r13 is
// what Read returns as the data; the code after it loads the size.
const POINT_IN = Buffer.from('4d8b6c24084d036c241849017c24080f1f840000000000', 'hex');
// In ReadArithmetic<char> (this in %rbx): mov 0x8(%rbx),%rsi; mov %r13,%rdi; add 0x18(%rbx),%rsi; and
// add %r12,0x8(%rbx) (the count).
const READS_FROM = ['488b73084c89ef48037318', '4c016308'];
// In ~SnapshotData: mov (%rdi),%eax; mov %rdi,%rbx; test %eax,%eax; jne skip; mov 0x78(%rdi),%rdi; test %rdi,%rdi;
// je skip; call delete[].
const DELETE_BLOB = '8b074889fb85c075__488b7f784885ff7405e8________';

/** Offsets in `f` within [from, from + size) where hex `pattern` ("__" any byte) matches. */
function matches(f, from, size, pattern) {
  const want = pattern.match(/../g).map((h) => (h === '__' ? -1 : parseInt(h, 16)));
  const out = [];
  for (let at = from; at + want.length <= from + size; at++) {
    if (want.every((b, i) => b < 0 || f[at + i] === b)) out.push(at);
  }
  return out;
}

/** 11. above: the change, or throws saying what is not as checked. */
function snapshotInPlace(elf, symbols) {
  const body = ([symbol, name]) => {
    const fn = symbols.symbolWithSize(symbol);
    const from = fn ? elf.offOf(fn.va) : -1;
    if (from < 0 || !fn.size) throw new Error(`no ${name} in the file`);
    return { from, size: fn.size, va: fn.va };
  };
  const read = body(READ_STARTUP_DATA);
  const hits = matches(elf.f, read.from, read.size, COPY_OUT.before + COPY_OUT.at);
  if (hits.length !== 1) throw new Error(`expected one copy of the startup data in ${READ_STARTUP_DATA[1]}, found ${hits.length}`);
  if (elf.f.compare(Buffer.from('554889e5415541544989fc', 'hex'), 0, 11, read.from, read.from + 11) !== 0) throw new Error(`${READ_STARTUP_DATA[1]} does not keep this in %r12`);
  const at = hits[0] + COPY_OUT.before.length / 2;
  const readChars = body(READ_CHARS);
  const callEnd = at + COPY_OUT.at.length / 2;
  if (elf.vaOf(callEnd) + elf.f.readInt32LE(callEnd - 4) !== readChars.va) throw new Error(`the copy is not made by ${READ_CHARS[1]}`);
  for (const p of READS_FROM) {
    if (matches(elf.f, readChars.from, readChars.size, p).length !== 1) throw new Error(`${READ_CHARS[1]} does not read as checked`);
  }
  const dtor = body(SNAPSHOT_DATA_DTOR);
  const del = matches(elf.f, dtor.from, dtor.size, DELETE_BLOB);
  if (del.length !== 1) throw new Error(`expected one delete of the startup data in ${SNAPSHOT_DATA_DTOR[1]}, found ${del.length}`);
  return () => {
    POINT_IN.copy(elf.f, at);
    NOP5.copy(elf.f, del[0] + DELETE_BLOB.length / 2 - 5);
  };
}

const RETURN_TRUE = Buffer.from([0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3]); // mov $1, %eax; ret
const RETURN_FALSE = Buffer.from([0xb8, 0x00, 0x00, 0x00, 0x00, 0xc3]); // mov $0, %eax; ret

/**
 * Node's tuned binary: the bytes and why a change was not made ('' when all were). `symbols` is the unstripped
 * node the input was made from (its symbol table locates code; the input may be stripped). `checkedSpawn` is the
 * uv_spawn that 10. was checked against (tests give their own). Never throws: what cannot be done is left out.
 */
function tuneNode(input, symbols = input, checkedSpawn = CHECKED_UV_SPAWN) {
  // node:crypto only here, at build time: a plugin's start loads no OpenSSL (6. above).
  const sha256 = (b) => require('node:crypto').createHash('sha256').update(b).digest('hex');
  const notDone = [];
  let elf;
  try {
    elf = new Elf(Buffer.from(input));
  } catch (e) {
    return { bytes: input, notDone: e.message };
  }
  try {
    const cli = elf.literals('--rehash-snapshot');
    if (cli.length !== 1) throw new Error(`expected one "--rehash-snapshot" literal, found ${cli.length}`);
    const changes = [elf.boolFlagOff('rehash_snapshot'), ...OFF.map((n) => elf.boolFlagOff(n))];
    for (const c of changes) c();
    elf.f[cli[0]] = 0;
  } catch (e) {
    notDone.push(`flags: ${e.message}`);
  }
  const symbolTable = new Elf(Buffer.from(symbols));
  try {
    const va = symbolTable.symbol(SHOULD_VERIFY);
    if (va === undefined) throw new Error('no symbol table with Snapshot::ShouldVerifyChecksum');
    const off = elf.offOf(va);
    if (off < 0 || elf.f.compare(RETURN_TRUE, 0, RETURN_TRUE.length, off, off + RETURN_TRUE.length) !== 0) throw new Error('Snapshot::ShouldVerifyChecksum is not "return true" here');
    RETURN_FALSE.copy(elf.f, off);
  } catch (e) {
    notDone.push(`snapshot checksum: ${e.message}`);
  }
  for (const [what, changes] of [['openssl at start', OPENSSL_AT_START], ['profiler source positions', PROFILER_POSITIONS]]) {
    try {
      for (const change of callChanges(elf, symbolTable, changes)) change();
    } catch (e) {
      notDone.push(`${what}: ${e.message}`);
    }
  }
  try {
    const fn = symbolTable.symbolWithSize(EXIT_HANDLER);
    if (!fn) throw new Error('no symbol DefaultProcessExitHandlerInternal');
    const off = elf.offOf(fn.va);
    if (off < 0 || fn.size < 16) throw new Error('DefaultProcessExitHandlerInternal is not in the file, or too short');
    EXIT_GROUP.copy(elf.f, off);
    try {
      vforkSpawn(elf, symbolTable, fn, checkedSpawn, sha256)();
    } catch (e) {
      notDone.push(`vfork spawn: ${e.message}`);
    }
  } catch (e) {
    notDone.push(`fast exit: ${e.message}`);
  }
  try {
    snapshotInPlace(elf, symbolTable)();
  } catch (e) {
    notDone.push(`snapshot in place: ${e.message}`);
  }
  for (const name of IGNORED_ENV) {
    try {
      const at = elf.literalsLoadedIntoEdi(name);
      if (at.length !== 1) throw new Error(`expected one "${name}" literal passed to getenv, found ${at.length}`);
      elf.f[at[0]] = 0;
    } catch (e) {
      notDone.push(`environment: ${e.message}`);
    }
  }
  return { bytes: elf.f, notDone: notDone.join('; ') };
}

function tuneFile(src, dst, symbolsFrom = src) {
  const r = tuneNode(readFileSync(src), readFileSync(symbolsFrom));
  writeFileSync(dst, r.bytes, { mode: 0o755 });
  return r.notDone;
}

const WITHOUT_CODE_CACHE = 1;

/**
 * Marks the snapshot in an SEA blob portable (see 2. above). Its metadata is the snapshot type, then the Node
 * version, arch and platform (each a 64-bit length and the text), then the V8 tag and the flags (32 bits each);
 * `tag` is the builder's `v8.cachedDataVersionTag()`. Throws when the metadata is not found exactly once.
 */
function markSnapshotPortable(blob, tag, platform = process.platform) {
  const needle = Buffer.alloc(8 + platform.length + 4);
  needle.writeBigUInt64LE(BigInt(platform.length), 0);
  needle.write(platform, 8, 'latin1');
  needle.writeUInt32LE(tag, 8 + platform.length);
  const at = blob.indexOf(needle);
  if (at < 0 || blob.indexOf(needle, at + 1) >= 0) throw new Error(`snapshot metadata (platform ${platform}, tag ${tag.toString(16)}) not found exactly once in the SEA blob`);
  const flagsAt = at + needle.length;
  blob.writeUInt32LE(blob.readUInt32LE(flagsAt) | WITHOUT_CODE_CACHE, flagsAt);
  return blob;
}

const SEA_USE_CODE_CACHE = 4;
const SEA_INCLUDE_ASSETS = 8;

/**
 * Where the code-cache vector of a snapshot starts: a 64-bit count, then per module its id (64-bit length and
 * text) and its code (64-bit length and bytes), ending exactly at the snapshot's end. Exactly one offset may
 * parse so; -1 otherwise.
 */
function codeCacheStart(snap) {
  const end = snap.length;
  const hits = [];
  for (let p = 0; p + 16 <= end; p += 1) {
    // Cheap rejections first: a count below 4096 and a first id of 1..255 printable bytes.
    const n = snap.readUInt32LE(p);
    if (n === 0 || n > 4096 || snap.readUInt32LE(p + 4) !== 0 || snap.readUInt32LE(p + 12) !== 0) continue;
    let q = p + 8;
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      if (q + 8 > end) { ok = false; break; }
      const idLen = Number(snap.readBigUInt64LE(q));
      q += 8;
      if (idLen === 0 || idLen > 255 || q + idLen > end) ok = false;
      for (let k = 0; ok && k < idLen; k++) if (snap[q + k] < 0x20 || snap[q + k] > 0x7e) ok = false;
      q += idLen;
      if (!ok || q + 8 > end) { ok = false; break; }
      const codeLen = Number(snap.readBigUInt64LE(q));
      q += 8 + codeLen;
      if (q > end) ok = false;
    }
    if (ok && q === end) hits.push(p);
  }
  return hits.length === 1 ? hits[0] : -1;
}

/**
 * The SEA blob with the snapshot's code cache of built-in modules emptied (see 7. above). The blob is a 32-bit
 * magic and flags, the main script's path and the snapshot (each a 64-bit length and the bytes), and nothing
 * after the snapshot when neither a code cache nor assets are included. Throws when the blob is not so.
 */
function dropBuiltinCodeCache(blob) {
  const flags = blob.readUInt32LE(4);
  if (flags & (SEA_USE_CODE_CACHE | SEA_INCLUDE_ASSETS)) throw new Error(`the SEA blob has more than a snapshot after its path (flags ${flags})`);
  const lengthAt = 8 + 8 + Number(blob.readBigUInt64LE(8));
  if (lengthAt + 8 > blob.length) throw new Error('the SEA blob is shorter than its header says');
  const start = lengthAt + 8;
  const length = Number(blob.readBigUInt64LE(lengthAt));
  if (start + length !== blob.length) throw new Error('the snapshot is not the SEA blob\'s last item');
  const at = codeCacheStart(blob.subarray(start));
  if (at < 0) throw new Error('the code cache of built-in modules was not found exactly once in the snapshot');
  const out = Buffer.concat([blob.subarray(0, start + at), Buffer.alloc(8)]);
  out.writeBigUInt64LE(BigInt(at + 8), lengthAt);
  return out;
}

module.exports = { tuneNode, tuneFile, markSnapshotPortable, dropBuiltinCodeCache };
