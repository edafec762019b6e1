/**
 * A rehearsal: the snapshot builder runs whole requests (cmd/warmup.ts) so that the V8 startup snapshot carries
 * the bytecode of everything a request runs. While it is on, the few places that would touch the machine
 * pretend: processes (lib/exec), locks (lib/lock) and sysctl writes (lib/net/sysctl) succeed without doing
 * anything, and in-process delegation skips its check of our own executable. Files a request writes go to the
 * rehearsal's own temporary data directory. It is never on outside `cmd/warmup.ts`, which turns it off before
 * the snapshot is taken.
 */
export const rehearsal = { on: false };
