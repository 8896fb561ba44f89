// The messages of the message queue tests: [producer id u32][seq u32][body], with the body's
// length and bytes drawn from (id, seq), so that a consumer can check every byte.

/** Writes message (id, seq) into `buf` and returns the view of it. */
export function messageOf(buf: Uint8Array, id: number, seq: number): Uint8Array {
  const length = 8 + ((seq * 7 + id * 13) % 57); // 8 .. 64 bytes: both rings of the tests
  const view = new DataView(buf.buffer, buf.byteOffset);
  view.setUint32(0, id, true);
  view.setUint32(4, seq, true);
  for (let i = 8; i < length; i++) buf[i] = (id * 31 + seq * 17 + i) & 0xff;
  return buf.subarray(0, length);
}

/** Checks a received message; returns its (id, seq), or throws what is wrong with it. */
export function checkMessage(bytes: Uint8Array, length: number): { id: number; seq: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const id = view.getUint32(0, true);
  const seq = view.getUint32(4, true);
  if (length !== 8 + ((seq * 7 + id * 13) % 57)) throw new Error(`message ${id}/${seq} has length ${length}`);
  for (let i = 8; i < length; i++) {
    if (bytes[i] !== ((id * 31 + seq * 17 + i) & 0xff)) throw new Error(`message ${id}/${seq}: byte ${i} is wrong`);
  }
  return { id, seq };
}
