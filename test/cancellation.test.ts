import { describe, expect, it } from 'vitest';
import { Cancellation } from '../src/cancellation.js';

describe('Cancellation (a request\'s "stop now" signal)', () => {
  it('cancels once: the first reason stays, listeners run once', () => {
    const cancellation = new Cancellation();
    let calls = 0;
    cancellation.onCancel(() => calls++);
    expect(cancellation.aborted).toBe(false);
    expect(cancellation.reason).toBeUndefined();
    const first = new Error('client gone');
    cancellation.cancel(first);
    cancellation.cancel(new Error('again'));
    expect(cancellation.aborted).toBe(true);
    expect(cancellation.reason).toBe(first);
    expect(calls).toBe(1);
  });

  it('runs a listener added after the cancellation at once, and a removed listener never', () => {
    const cancellation = new Cancellation();
    let removedCalls = 0;
    const stop = cancellation.onCancel(() => removedCalls++);
    stop();
    cancellation.cancel(new Error('gone'));
    expect(removedCalls).toBe(0);
    let lateCalls = 0;
    cancellation.onCancel(() => lateCalls++);
    expect(lateCalls).toBe(1);
    expect(cancellation.listenerCount('abort')).toBe(0);
  });

  it('sleep() resolves after its time and leaves no listener; a cancellation cuts it short with the reason', async () => {
    const cancellation = new Cancellation();
    await cancellation.sleep(5);
    expect(cancellation.listenerCount('abort')).toBe(0);
    const sleeping = cancellation.sleep(60_000);
    const reason = new Error('client gone');
    cancellation.cancel(reason);
    await expect(sleeping).rejects.toBe(reason);
    await expect(cancellation.sleep(60_000)).rejects.toBe(reason);
  });
});
