/** cnitool's pieces that must match upstream exactly: the container ID derivation and CNI_ARGS parsing. */
import { containerIdFor, parseToolArgs } from '../../cmd/cnitool';

test('container ID is "cnitool-" + the first 10 bytes of sha512(netns path), as upstream derives it', () => {
  // printf %s /var/run/netns/x | sha512sum | cut -c1-20
  expect(containerIdFor('/var/run/netns/x')).toBe('cnitool-4acf487154af9777be71');
});

test('CNI_ARGS become ordered pairs; an empty key or value is an error (code 4)', () => {
  expect(parseToolArgs('IgnoreUnknown=1;IP=192.0.2.9;K8S_POD_NAME=a=b')).toEqual([
    ['IgnoreUnknown', '1'],
    ['IP', '192.0.2.9'],
    ['K8S_POD_NAME', 'a=b'],
  ]);
  expect(parseToolArgs('')).toEqual([]);
  expect(() => parseToolArgs('IP=')).toThrow(expect.objectContaining({ code: 4, message: expect.stringContaining('"IP="') }));
  expect(() => parseToolArgs('=x')).toThrow(expect.objectContaining({ code: 4 }));
});
