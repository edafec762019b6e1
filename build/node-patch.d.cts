/** Types of node-patch.cjs (for the unit tests). */
export function tuneNode(input: Buffer, symbols?: Buffer): { bytes: Buffer; notDone: string };
export function tuneFile(src: string, dst: string): string;
export function markSnapshotPortable(blob: Buffer, tag: number, platform?: string): Buffer;
export function dropBuiltinCodeCache(blob: Buffer): Buffer;
