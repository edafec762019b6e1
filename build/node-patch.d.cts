/** Types of node-patch.cjs (for the unit tests). */
/** The uv_spawn that the vfork stub (item 10) was checked against: its bytes' SHA-256 and where its fork call and environ store are. */
export interface CheckedSpawn {
  sha256: string;
  size: number;
  forkCall: number;
  environStore: number;
}
export function tuneNode(input: Buffer, symbols?: Buffer, checkedSpawn?: CheckedSpawn): { bytes: Buffer; notDone: string };
export function tuneFile(src: string, dst: string): string;
export function markSnapshotPortable(blob: Buffer, tag: number, platform?: string): Buffer;
export function dropBuiltinCodeCache(blob: Buffer): Buffer;
