/** The busy node of the benchmark: kube-proxy-style NAT rules for the host namespace, and their removal. */

/** kube-proxy's shape: KUBE-SERVICES hooked into PREROUTING and OUTPUT, one chain per service with a DNAT rule. */
export function kubeProxyRules(n: number): string {
  const lines = ['*nat', ':KUBE-SERVICES - [0:0]'];
  for (let i = 0; i < n; i++) lines.push(`:KUBE-SVC-${i.toString(16).toUpperCase().padStart(16, '0')} - [0:0]`);
  lines.push('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  lines.push('-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  for (let i = 0; i < n; i++) {
    const chain = `KUBE-SVC-${i.toString(16).toUpperCase().padStart(16, '0')}`;
    const ip = `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    lines.push(`-A KUBE-SERVICES -d ${ip}/32 -p tcp -m comment --comment "default/svc-${i}:http cluster IP" -m tcp --dport 80 -j ${chain}`);
    lines.push(`-A ${chain} -p tcp -m comment --comment "default/svc-${i}:http" -m tcp -j DNAT --to-destination 192.0.2.${1 + (i % 250)}:8080`);
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

export function removeKubeProxyRules(n: number): string {
  const svc = (i: number) => `KUBE-SVC-${i.toString(16).toUpperCase().padStart(16, '0')}`;
  const lines = ['*nat'];
  lines.push('-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  lines.push('-D OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  lines.push('-F KUBE-SERVICES', '-X KUBE-SERVICES');
  for (let i = 0; i < n; i++) lines.push(`-F ${svc(i)}`, `-X ${svc(i)}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}
