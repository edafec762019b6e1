import { PLUGINS } from '../../cmd/main';
import { warmup } from '../../cmd/warmup';
import { rehearsal } from '../../lib/rehearsal';

describe('snapshot warm-up', () => {
  test('every step runs, and each request stops where the warm-up expects (before touching the system)', async () => {
    expect(await warmup(PLUGINS)).toEqual([]);
    // The rehearsal's pretending must not outlive it: the snapshot is taken right after.
    expect(rehearsal.on).toBe(false);
  });
});
