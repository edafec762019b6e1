/** resolv.conf parsing for `ipam.resolvConf`, line for line as the Go plugin reads it. */
import { readFileSync } from 'node:fs';
import { configError, ioError } from '../../lib/errors';
import type { DNS } from '../../lib/types/result';

export function parseResolvConf(text: string): DNS {
  const dns: { nameservers: string[]; domain?: string; search: string[]; options: string[] } = { nameservers: [], search: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line[0] === '#' || line[0] === ';') continue;
    const [key, ...rest] = line.split(/\s+/);
    if (!rest.length) continue;
    if (key === 'nameserver') dns.nameservers.push(rest[0]!);
    else if (key === 'domain') dns.domain = rest[0]!;
    else if (key === 'search') dns.search.push(...rest);
    else if (key === 'options') dns.options.push(...rest);
  }
  const out: DNS = {};
  if (dns.nameservers.length) out.nameservers = dns.nameservers;
  if (dns.domain !== undefined) out.domain = dns.domain;
  if (dns.search.length) out.search = dns.search;
  if (dns.options.length) out.options = dns.options;
  return out;
}

export function readResolvConf(path: string): DNS {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = `ipam.resolvConf: cannot read ${JSON.stringify(path)}: ${(e as Error).message}`;
    throw code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' ? configError(why) : ioError(why);
  }
}
