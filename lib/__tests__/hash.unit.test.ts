/** SHA-512 without OpenSSL must give node:crypto's digest for every text, or the Go-compatible names change. */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { sha512Hex } from '../hash';

const reference = (s: string) => createHash('sha512').update(s).digest('hex');

describe('sha512Hex', () => {
  test('FIPS 180-2 test vectors', () => {
    expect(sha512Hex('abc')).toBe('ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f');
    expect(sha512Hex('')).toBe('cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e');
    expect(sha512Hex('abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu')).toBe(
      '8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909',
    );
  });
  test('every length around the block and padding boundaries (111, 112, 128 bytes...)', () => {
    for (let n = 0; n <= 300; n++) expect(sha512Hex('x'.repeat(n))).toBe(reference('x'.repeat(n)));
  });
  test('any text, UTF-8 included, as node:crypto', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => sha512Hex(s) === reference(s)), { numRuns: 300 });
  });
});
