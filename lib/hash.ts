/**
 * SHA-512 of a short text, without OpenSSL. The names other tools depend on (the Go plugins' `CNI-<sha512>` chains,
 * our veth names) are SHA-512 digests of a container ID and a network name; node:crypto would bring OpenSSL up for
 * them (fetching every algorithm of its default provider, ~3 M instructions per plugin call), which the build
 * keeps out of Node's start (build/node-patch.cjs, item 6). Speed is not a concern: a plugin call hashes a few
 * dozen bytes. Constants are computed (FIPS 180-4, 4.2.3 and 5.3.5) rather than typed in.
 */

const FIRST_PRIMES = (() => {
  const out: bigint[] = [];
  for (let n = 2n; out.length < 80; n++) if (out.every((p) => n % p !== 0n)) out.push(n);
  return out;
})();

/** floor(x^(1/k)) for x >= 0 (Newton's method on integers). */
function iroot(x: bigint, k: bigint): bigint {
  if (x < 2n) return x;
  let r = 1n << (BigInt(x.toString(2).length) / k + 1n);
  for (;;) {
    const next = ((k - 1n) * r + x / r ** (k - 1n)) / k;
    if (next >= r) return r;
    r = next;
  }
}

const MASK64 = (1n << 64n) - 1n;
/** The first 64 bits of the fractional part of p^(1/k), as [hi, lo] 32-bit halves. */
function fractionBits(p: bigint, k: bigint): [number, number] {
  const v = iroot(p << (64n * k), k) & MASK64;
  return [Number(v >> 32n), Number(v & 0xffffffffn)];
}

const K = new Uint32Array(FIRST_PRIMES.flatMap((p) => fractionBits(p, 3n)));
const H0 = FIRST_PRIMES.slice(0, 8).flatMap((p) => fractionBits(p, 2n));
const TWO32 = 4294967296;

// 64-bit words are pairs of unsigned 32-bit halves: hi at [2i], lo at [2i + 1]. The rotations below are spelled out
// per distance (rotr(x, n) for n >= 32 swaps the halves and rotates by n - 32).
const w = new Uint32Array(160);

function compress(h: Uint32Array, block: Buffer, at: number): void {
  for (let i = 0; i < 32; i++) w[i] = block.readUInt32BE(at + 4 * i);
  for (let t = 16; t < 80; t++) {
    let xh = w[2 * (t - 15)]!;
    let xl = w[2 * (t - 15) + 1]!;
    // sigma0 = rotr 1 ^ rotr 8 ^ shr 7
    const s0h = ((xh >>> 1) | (xl << 31)) ^ ((xh >>> 8) | (xl << 24)) ^ (xh >>> 7);
    const s0l = ((xl >>> 1) | (xh << 31)) ^ ((xl >>> 8) | (xh << 24)) ^ ((xl >>> 7) | (xh << 25));
    xh = w[2 * (t - 2)]!;
    xl = w[2 * (t - 2) + 1]!;
    // sigma1 = rotr 19 ^ rotr 61 ^ shr 6
    const s1h = ((xh >>> 19) | (xl << 13)) ^ ((xl >>> 29) | (xh << 3)) ^ (xh >>> 6);
    const s1l = ((xl >>> 19) | (xh << 13)) ^ ((xh >>> 29) | (xl << 3)) ^ ((xl >>> 6) | (xh << 26));
    const lo = w[2 * (t - 16) + 1]! + (s0l >>> 0) + w[2 * (t - 7) + 1]! + (s1l >>> 0);
    w[2 * t] = w[2 * (t - 16)]! + s0h + w[2 * (t - 7)]! + s1h + Math.floor(lo / TWO32);
    w[2 * t + 1] = lo;
  }
  let ah = h[0]!, al = h[1]!, bh = h[2]!, bl = h[3]!, ch = h[4]!, cl = h[5]!, dh = h[6]!, dl = h[7]!;
  let eh = h[8]!, el = h[9]!, fh = h[10]!, fl = h[11]!, gh = h[12]!, gl = h[13]!, hh = h[14]!, hl = h[15]!;
  for (let t = 0; t < 80; t++) {
    // T1 = h + Sigma1(e) + Ch(e, f, g) + K[t] + W[t]; Sigma1 = rotr 14 ^ rotr 18 ^ rotr 41
    const S1h = ((eh >>> 14) | (el << 18)) ^ ((eh >>> 18) | (el << 14)) ^ ((el >>> 9) | (eh << 23));
    const S1l = ((el >>> 14) | (eh << 18)) ^ ((el >>> 18) | (eh << 14)) ^ ((eh >>> 9) | (el << 23));
    const chh = (eh & fh) ^ (~eh & gh);
    const chl = (el & fl) ^ (~el & gl);
    const t1l = hl + (S1l >>> 0) + (chl >>> 0) + K[2 * t + 1]! + w[2 * t + 1]!;
    const t1h = hh + S1h + chh + K[2 * t]! + w[2 * t]! + Math.floor(t1l / TWO32);
    // T2 = Sigma0(a) + Maj(a, b, c); Sigma0 = rotr 28 ^ rotr 34 ^ rotr 39
    const S0h = ((ah >>> 28) | (al << 4)) ^ ((al >>> 2) | (ah << 30)) ^ ((al >>> 7) | (ah << 25));
    const S0l = ((al >>> 28) | (ah << 4)) ^ ((ah >>> 2) | (al << 30)) ^ ((ah >>> 7) | (al << 25));
    const majh = (ah & bh) ^ (ah & ch) ^ (bh & ch);
    const majl = (al & bl) ^ (al & cl) ^ (bl & cl);
    const t2l = (S0l >>> 0) + (majl >>> 0);
    const t2h = S0h + majh + Math.floor(t2l / TWO32);
    hh = gh; hl = gl;
    gh = fh; gl = fl;
    fh = eh; fl = el;
    const el2 = dl + (t1l >>> 0);
    eh = (dh + t1h + Math.floor(el2 / TWO32)) >>> 0;
    el = el2 >>> 0;
    dh = ch; dl = cl;
    ch = bh; cl = bl;
    bh = ah; bl = al;
    const al2 = (t1l >>> 0) + (t2l >>> 0);
    ah = (t1h + t2h + Math.floor(al2 / TWO32)) >>> 0;
    al = al2 >>> 0;
  }
  const v = [ah, al, bh, bl, ch, cl, dh, dl, eh, el, fh, fl, gh, gl, hh, hl];
  for (let i = 0; i < 16; i += 2) {
    const lo = h[i + 1]! + v[i + 1]!;
    h[i] = h[i]! + v[i]! + Math.floor(lo / TWO32);
    h[i + 1] = lo;
  }
}

/** The SHA-512 digest of `text` (UTF-8), in lower-case hex, as `createHash('sha512').update(text).digest('hex')`. */
export function sha512Hex(text: string): string {
  const msg = Buffer.from(text, 'utf8');
  // The message, 0x80, zeros to 112 mod 128 bytes, then its length in bits as a 128-bit big-endian number.
  const padded = Buffer.alloc(Math.ceil((msg.length + 17) / 128) * 128);
  msg.copy(padded);
  padded[msg.length] = 0x80;
  const bits = msg.length * 8;
  padded.writeUInt32BE(Math.floor(bits / TWO32), padded.length - 8);
  padded.writeUInt32BE(bits >>> 0, padded.length - 4);
  const h = new Uint32Array(H0);
  for (let at = 0; at < padded.length; at += 128) compress(h, padded, at);
  let hex = '';
  for (const x of h) hex += x.toString(16).padStart(8, '0');
  return hex;
}

/**
 * node:crypto's createHash, loaded at the first call: for the installer's file digests, off every plugin call's
 * path. Imported at the top, node:crypto and its 17 internal modules were part of the startup snapshot that every
 * plugin call deserializes (~3 M instructions, 5% of a start).
 */
export function createHashLazily(algorithm: string): import('node:crypto').Hash {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('node:crypto') as typeof import('node:crypto')).createHash(algorithm);
}
