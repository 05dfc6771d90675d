/**
 * A cap on work done for senders nobody has authenticated yet: POST forms whose fields are still
 * arriving (their signature is in the body), and refused requests whose unread body is being
 * discarded. Without it, a crowd of slow anonymous senders could hold connections and memory
 * without end. Over the cap, new forms get 503 SlowDown and refused bodies are not waited for.
 */
export class UnauthenticatedWork {
  private inFlight = 0;

  constructor(readonly max: number) {}

  /** A slot, or null when the cap is reached. The returned release is idempotent. */
  tryEnter(): (() => void) | null {
    if (this.inFlight >= this.max) return null;
    this.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
    };
  }

  get current(): number {
    return this.inFlight;
  }
}
