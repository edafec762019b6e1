/** Planning a DEL by rule handle from `nft -a list chain` of the attachment's chain (iptables-nft's nat table). */
import { planByHandle } from '../firewall/iptables/by-handle';

// As nft 1.0.6 lists a portmap chain iptables-restore made (the DNAT target is native, the marks are jumps).
const listing = `table ip nat {
	chain CNI-DN-0000000000000000000fb { # handle 2266
		ip saddr 198.18.0.0/16 tcp dport 20251 counter packets 0 bytes 0 jump CNI-HOSTPORT-SETMARK # handle 2267
		ip saddr 127.0.0.1 tcp dport 20251 counter packets 0 bytes 0 jump CNI-HOSTPORT-SETMARK # handle 2268
		tcp dport 20251 counter packets 0 bytes 0 dnat to 198.18.1.2:80 # handle 2269
	}
}
`;

describe('planByHandle', () => {
  test('the jumps follow the chain\'s last rule; the chain goes by handle and its listing scopes the fetch', () => {
    expect(planByHandle(listing, 4, 'CNI-HOSTPORT-DNAT', 'CNI-DN-0000000000000000000fb', 1)!.split('\n')).toEqual([
      'delete rule ip nat CNI-HOSTPORT-DNAT handle 2270',
      'delete chain ip nat handle 2266',
      'list chain ip nat CNI-DN-0000000000000000000fb',
    ]);
  });

  test('several jumps (TCP and UDP, or one per address) are consecutive; IPv6 is table ip6 nat', () => {
    const v6 = listing.replace('table ip nat', 'table ip6 nat');
    expect(planByHandle(v6, 6, 'POSTROUTING', 'CNI-DN-0000000000000000000fb', 2)!.split('\n').slice(0, 3)).toEqual([
      'delete rule ip6 nat POSTROUTING handle 2270',
      'delete rule ip6 nat POSTROUTING handle 2271',
      'delete chain ip6 nat handle 2266',
    ]);
  });

  test('the highest rule handle counts, whatever the order listed; a comment with "# handle" in it is no handle', () => {
    const shuffled = `table ip nat {
	chain CNI-abc { # handle 10
		ip daddr 10.0.0.0/24 counter packets 0 bytes 0 accept comment "x # handle 99 y" # handle 14
		counter packets 0 bytes 0 masquerade # handle 12
	}
}
`;
    expect(planByHandle(shuffled, 4, 'POSTROUTING', 'CNI-abc', 1)!.split('\n')[0]).toBe('delete rule ip nat POSTROUTING handle 15');
  });

  test('no plan without rules to count from, for another chain\'s listing, or without jumps', () => {
    expect(planByHandle('table ip nat {\n\tchain CNI-abc { # handle 10\n\t}\n}\n', 4, 'POSTROUTING', 'CNI-abc', 1)).toBeUndefined();
    expect(planByHandle(listing, 4, 'CNI-HOSTPORT-DNAT', 'CNI-DN-other', 1)).toBeUndefined();
    expect(planByHandle(listing, 4, 'CNI-HOSTPORT-DNAT', 'CNI-DN-0000000000000000000fb', 0)).toBeUndefined();
    expect(planByHandle('', 4, 'CNI-HOSTPORT-DNAT', 'CNI-DN-0000000000000000000fb', 1)).toBeUndefined();
  });
});
