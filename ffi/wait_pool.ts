/**
 * Futex waits that do not block the event loop, for runtimes without nonblocking FFI calls (Bun,
 * Node): each pending wait is handed to an idle worker thread that blocks in the kernel instead
 * (`bun_futex_worker.ts`, `node_futex_worker.ts`). Workers are kept for reuse, unreferenced while
 * idle so they never keep the process alive, and ended by `close`.
 *
 * @module
 */

/**
 * The URL of a worker script beside `base` (an `import.meta.url`), with base's own extension:
 * `.ts` when run from source, `.js` from the compiled npm package.
 */
export function siblingScript(base: string, stem: string): URL {
  return new URL(`./${stem}${base.endsWith(".js") ? ".js" : ".ts"}`, base);
}

/** What the pool needs of a worker thread, whichever runtime made it. */
export interface WaitWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  ref(): void;
  unref(): void;
}

/** The outcome of one wait, as the worker reports it. */
export interface WaitOutcome {
  id: number;
  result: number;
  errno: number;
}

/** Starts a worker that reports each wait's outcome to `onMessage`, and a failure to `onError`. */
export type SpawnWaitWorker = (onMessage: (outcome: WaitOutcome) => void, onError: () => void) => WaitWorker;

/** A pool of waiting Workers. */
export class WaitPool {
  readonly #spawnWorker: SpawnWaitWorker;
  readonly #idle: WaitWorker[] = [];
  readonly #all = new Set<WaitWorker>();
  readonly #pending = new Map<number, (outcome: { result: number; errno: number }) => void>();
  /** Busy workers to end as soon as their wait returns. */
  readonly #retiring = new Set<WaitWorker>();
  #nextId = 1;

  constructor(spawnWorker: SpawnWaitWorker) {
    this.#spawnWorker = spawnWorker;
  }

  #spawn(): WaitWorker {
    const worker: WaitWorker = this.#spawnWorker((data) => {
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
    }, () => {
      // A worker that fails is dropped; its waiter learns of it as an interrupted wait.
      this.#all.delete(worker);
      for (const [id, done] of this.#pending) {
        this.#pending.delete(id);
        done({ result: -1, errno: 4 });
      }
    });
    this.#all.add(worker);
    return worker;
  }

  /** FUTEX_WAIT at `address` on a worker thread; resolves with the raw result and errno. */
  wait(address: number | bigint, expected: number, timeoutMs: number): Promise<{ result: number; errno: number }> {
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
