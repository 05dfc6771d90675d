import { describe, expect, it } from 'vitest';
import { tuneHeapForStreaming } from '../src/heap-tuning.js';

describe('tuneHeapForStreaming', () => {
  it('sets a growing factor of 4 when node was started without one', () => {
    const set: string[] = [];
    expect(tuneHeapForStreaming(['--max-old-space-size=128', '--enable-source-maps'], (flags) => set.push(flags))).toBe(true);
    expect(set).toEqual(['--heap-growing-percent=300']);
  });

  it("leaves an operator's own --heap-growing-percent alone, in either spelling", () => {
    const set: string[] = [];
    expect(tuneHeapForStreaming(['--heap-growing-percent=50'], (flags) => set.push(flags))).toBe(false);
    expect(tuneHeapForStreaming(['--heap_growing_percent', '50'], (flags) => set.push(flags))).toBe(false);
    expect(set).toEqual([]);
  });
});
