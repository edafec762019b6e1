/** cnitool: the upstream CLI over lib/runtime. (Placeholder until the runtime side lands.) */
export async function cnitool(_args: string[]): Promise<number> {
  process.stderr.write('cnitool: not implemented yet\n');
  return 2;
}
