/**
 * A waker's kept way to ring one doorbell: a connection to its socket at first, and its pipe once
 * the holder handed the write end over at the gate (protocol: "The doorbell's pipe" in
 * `layout.ts`). A byte through the pipe wakes the holder's core sooner. Whatever the gate sends
 * is checked before it is used: only a pipe's write end is written to, never a file or a socket
 * a hostile listener passed.
 *
 * @module
 */

import type { Os } from "../../ffi/os.ts";
import { O_ACCMODE, O_NONBLOCK, O_RDONLY, S_IFIFO, S_IFMT } from "../../ffi/symbols.ts";

const ONE_BYTE = new Uint8Array(1);
/** Rings after which a gate that has not answered is given up (the socket serves on). */
const GATE_PATIENCE = 16;

/** How a line rings now. */
export type LineKind = "socket" | "pipe";

/** One kept way to ring one doorbell. */
export class BellLine {
  readonly #os: Os;
  #fd: number;
  #kind: LineKind = "socket";
  /** The connection waiting at the gate for the pipe's write end; -1 when none. */
  #gate: number;
  #patience = GATE_PATIENCE;
  readonly #scratch = new Uint8Array(8);

  private constructor(os: Os, fd: number, gate: number) {
    this.#os = os;
    this.#fd = fd;
    this.#gate = gate;
  }

  /**
   * Connects to the doorbell socket `name`; with `gate`, first asks there for the pipe (a gate
   * nobody listens on, or one whose backlog is full, just leaves the line on the socket). Throws
   * the socket's connect error.
   */
  static open(os: Os, name: string, gate?: string): BellLine {
    let gateFd = -1;
    if (gate !== undefined) {
      try {
        gateFd = os.connectUnix(gate, "seqpacket");
      } catch { /* no pipe to be had: the socket serves */ }
    }
    let fd: number;
    try {
      fd = os.connectUnix(name);
    } catch (error) {
      if (gateFd >= 0) os.close(gateFd);
      throw error;
    }
    return new BellLine(os, fd, gateFd);
  }

  /** The socket, or the pipe once it came. */
  get kind(): LineKind {
    return this.#kind;
  }

  /** The fd rung. */
  get fd(): number {
    return this.#fd;
  }

  /**
   * Writes one byte: a system call. A full buffer counts as rung (the holder has bytes to read).
   * Throws the OsError of a doorbell that is gone (EPIPE, ECONNRESET, ...).
   */
  ring(): void {
    if (this.#gate >= 0) this.#takePipe();
    if (this.#kind === "pipe") this.#os.write(this.#fd, ONE_BYTE);
    else this.#os.send(this.#fd, ONE_BYTE);
  }

  /** Takes the pipe's write end if the gate sent it; gives up on a gate that stays silent or sends something else. */
  #takePipe(): void {
    const os = this.#os;
    let got: { length: number; fds: number[] } | null;
    try {
      got = os.recvPacket(this.#gate, this.#scratch);
    } catch {
      got = { length: 0, fds: [] };
    }
    if (got === null) {
      if (--this.#patience <= 0) this.#closeGate();
      return;
    }
    this.#closeGate();
    const [fd, ...extra] = got.fds;
    for (const other of extra) os.close(other);
    if (fd === undefined) return;
    if (!this.#isPipeWriteEnd(fd)) {
      os.close(fd);
      return;
    }
    os.close(this.#fd); // the socket: its reader sees the end of the stream and lets go of it
    this.#fd = fd;
    this.#kind = "pipe";
  }

  /** Whether `fd` is a pipe (or FIFO) open for writing; made nonblocking when it is not yet. */
  #isPipeWriteEnd(fd: number): boolean {
    const os = this.#os;
    try {
      if ((os.fstat(fd).mode & S_IFMT) !== S_IFIFO) return false;
      const flags = os.fileFlags(fd);
      if ((flags & O_ACCMODE) === O_RDONLY) return false;
      if ((flags & O_NONBLOCK) === 0) os.setFileFlags(fd, flags | O_NONBLOCK);
      return true;
    } catch {
      return false;
    }
  }

  #closeGate(): void {
    this.#os.close(this.#gate);
    this.#gate = -1;
  }

  /** Closes the line (and a gate connection still waiting). */
  close(): void {
    if (this.#gate >= 0) this.#closeGate();
    try {
      this.#os.close(this.#fd);
    } catch { /* closed already */ }
  }
}
