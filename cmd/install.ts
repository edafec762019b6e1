/** cni-install: the Kubernetes node installer. (Placeholder until it lands.) */
export async function install(_args: string[]): Promise<number> {
  process.stderr.write('cni-install: not implemented yet\n');
  return 2;
}
