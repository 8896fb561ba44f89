/**
 * Futex waits for Bun that do not block the event loop: each pending wait is handed to an idle
 * Worker (ffi/bun_futex_worker.ts) that blocks in the kernel instead. Workers are kept for
 * reuse, unreferenced while idle so they never keep the process alive, and ended by `close`.
 *
 * @module
 */

interface BunWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  ref(): void;
  unref(): void;
  onmessage: ((event: { data: { id: number; result: number; errno: number } }) => void) | null;
  onerror: (() => void) | null;
}

/** A pool of waiting Workers. */
export class BunWaitPool {
  readonly #idle: BunWorker[] = [];
  readonly #all = new Set<BunWorker>();
  readonly #pending = new Map<number, (outcome: { result: number; errno: number }) => void>();
  /** Busy workers to end as soon as their wait returns. */
  readonly #retiring = new Set<BunWorker>();
  #nextId = 1;

  #spawn(): BunWorker {
    const WorkerClass = (globalThis as unknown as { Worker: new (url: string) => BunWorker }).Worker;
    const worker = new WorkerClass(new URL("./bun_futex_worker.ts", import.meta.url).href);
    worker.onmessage = ({ data }) => {
      const done = this.#pending.get(data.id);
      this.#pending.delete(data.id);
      worker.unref();
      if (this.#retiring.delete(worker)) {
        this.#all.delete(worker);
        worker.terminate();
      } else {
        this.#idle.push(worker);
      }
      done?.(data);
    };
    worker.onerror = () => {
      // A worker that fails is dropped; its waiter learns of it as an interrupted wait.
      this.#all.delete(worker);
      for (const [id, done] of this.#pending) {
        this.#pending.delete(id);
        done({ result: -1, errno: 4 });
      }
    };
    this.#all.add(worker);
    return worker;
  }

  /** FUTEX_WAIT at `address` on a worker thread; resolves with the raw result and errno. */
  wait(address: number, expected: number, timeoutMs: number): Promise<{ result: number; errno: number }> {
    const worker = this.#idle.pop() ?? this.#spawn();
    const id = this.#nextId++;
    worker.ref();
    const outcome = new Promise<{ result: number; errno: number }>((resolve) => this.#pending.set(id, resolve));
    worker.postMessage({ id, address, expected, timeoutMs });
    return outcome;
  }

  /** Ends every worker: idle ones now, busy ones as their wait returns. Later waits start anew. */
  close(): void {
    for (const worker of this.#idle.splice(0)) {
      this.#all.delete(worker);
      worker.terminate();
    }
    for (const worker of this.#all) this.#retiring.add(worker);
  }
}
