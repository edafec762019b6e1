import { parseCniArgs, pickArgs } from '../args';
import { checkVersion } from '../version';
import { parseWith } from '../types/schema';
import { NetConfBase } from '../types/netconf';
import * as z from 'zod/mini';

describe('CNI_ARGS', () => {
  test('parses pairs, case-sensitive', () => {
    const a = parseCniArgs('IP=192.0.2.5;ip=x;K8S_POD_NAME=p;IgnoreUnknown=1');
    expect(a.get('IP')).toBe('192.0.2.5');
    expect(a.get('ip')).toBe('x');
    expect(pickArgs(a, ['IP'])).toEqual({ IP: '192.0.2.5' });
  });
  test('unknown keys fail with code 4 unless IgnoreUnknown', () => {
    expect(() => pickArgs(parseCniArgs('FOO=1'), ['IP'])).toThrow(expect.objectContaining({ code: 4, message: expect.stringContaining('FOO') }));
    expect(pickArgs(parseCniArgs('FOO=1;IgnoreUnknown=true'), ['IP'])).toEqual({});
  });
  test('a pair without = is an error', () => {
    expect(() => parseCniArgs('IP')).toThrow(expect.objectContaining({ code: 4 }));
  });
});

describe('versions', () => {
  test('unknown version is code 1 listing what we support', () => {
    expect(() => checkVersion('ADD', '9.9.9')).toThrow(expect.objectContaining({ code: 1, message: expect.stringContaining('0.1.0, 0.2.0') }));
  });
  test.each([
    ['CHECK', '0.3.1'],
    ['STATUS', '1.0.0'],
    ['GC', '0.4.0'],
  ])('%s at %s is code 1', (cmd, v) => {
    expect(() => checkVersion(cmd, v)).toThrow(expect.objectContaining({ code: 1 }));
  });
  test('CHECK at 0.4.0 and GC at 1.1.0 pass', () => {
    expect(checkVersion('CHECK', '0.4.0')).toBe('0.4.0');
    expect(checkVersion('GC', '1.1.0')).toBe('1.1.0');
  });
});

describe('schema errors', () => {
  test('name the field and the value, code 7', () => {
    expect(() => parseWith(NetConfBase, { cniVersion: '1.0.0', name: '../evil', type: 'bridge' })).toThrow(
      expect.objectContaining({ code: 7, message: expect.stringMatching(/^name: .*\(got "\.\.\/evil"\)$/) }),
    );
    const S = z.object({ ranges: z.array(z.object({ subnet: z.string() })) });
    expect(() => parseWith(S, { ranges: [{ subnet: 5 }] }, 'ipam')).toThrow(expect.objectContaining({ message: 'ipam.ranges[0].subnet: expected string (got 5)' }));
  });
  test('unknown fields pass through', () => {
    const c = parseWith(NetConfBase, { cniVersion: '1.0.0', name: 'n', type: 't', extra: { a: 1 } });
    expect((c as Record<string, unknown>).extra).toEqual({ a: 1 });
  });
});
