import { PLUGINS } from '../../cmd/main';
import { warmup } from '../../cmd/warmup';

describe('snapshot warm-up', () => {
  test('every step runs, and each request stops where the warm-up expects (before touching the system)', async () => {
    expect(await warmup(PLUGINS)).toEqual([]);
  });
});
