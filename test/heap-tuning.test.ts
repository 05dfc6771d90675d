import { describe, expect, it } from 'vitest';
import { tuneHeapForStreaming } from '../src/heap-tuning.js';

describe('tuneHeapForStreaming', () => {
  it('sets the growing factor when node was started without one', () => {
    expect(tuneHeapForStreaming(['--max-old-space-size=128', '--enable-source-maps'])).toBe(true);
  });

  it("leaves an operator's own --heap-growing-percent alone, in either spelling", () => {
    expect(tuneHeapForStreaming(['--heap-growing-percent=50'])).toBe(false);
    expect(tuneHeapForStreaming(['--heap_growing_percent=50'])).toBe(false);
  });
});
