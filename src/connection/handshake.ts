/**
 * The two handshake messages of a connection, as fixed structs ("Connections" in `layout.ts`),
 * written and checked here. Every field of a received message is untrusted: a malformed one is
 * a `SegmentError` "handshake", never a crash and never a partly made connection.
 *
 * @module
 */

import { SegmentError } from "../errors.ts";
import {
  ANS_REASON,
  ANS_REASON_LENGTH,
  ANS_RX,
  ANS_SEGMENT_SIZE,
  ANS_STATUS,
  ANS_TX,
  ANSWER_ACCEPTED,
  ANSWER_NO_ROOM,
  ANSWER_SIZE,
  HANDSHAKE_MAGIC,
  HANDSHAKE_VERSION,
  HELLO_DOORBELL,
  HELLO_SIZE,
  HS_MAGIC,
  HS_TYPE,
  HS_TYPE_ANSWER,
  HS_TYPE_HELLO,
  HS_VERSION,
  MAX_REASON,
} from "../layout.ts";

/** What a client says. */
export interface Hello {
  readonly doorbell: number;
}

/** What a listener answers. */
export interface Answer {
  readonly status: number;
  readonly segmentSize: number;
  readonly rx: number;
  readonly tx: number;
  readonly reason: string;
}

function header(bytes: Uint8Array, type: number): DataView {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(HS_MAGIC, HANDSHAKE_MAGIC, true);
  view.setUint16(HS_VERSION, HANDSHAKE_VERSION, true);
  view.setUint16(HS_TYPE, type, true);
  return view;
}

function check(bytes: Uint8Array, length: number, min: number, type: number, what: string): DataView {
  if (length < min) throw new SegmentError("handshake", `${what}: ${length} bytes, expected at least ${min}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  const magic = view.getUint32(HS_MAGIC, true);
  if (magic !== HANDSHAKE_MAGIC) throw new SegmentError("handshake", `${what}: bad magic 0x${magic.toString(16)}`);
  const version = view.getUint16(HS_VERSION, true);
  if (version !== HANDSHAKE_VERSION) {
    throw new SegmentError("handshake", `${what}: version ${version}, this library speaks ${HANDSHAKE_VERSION}`);
  }
  if (view.getUint16(HS_TYPE, true) !== type) throw new SegmentError("handshake", `${what}: unexpected message type`);
  return view;
}

export function encodeHello(hello: Hello): Uint8Array {
  const bytes = new Uint8Array(HELLO_SIZE);
  header(bytes, HS_TYPE_HELLO).setUint32(HELLO_DOORBELL, hello.doorbell, true);
  return bytes;
}

export function decodeHello(bytes: Uint8Array, length: number): Hello {
  const view = check(bytes, length, HELLO_SIZE, HS_TYPE_HELLO, "hello");
  if (length !== HELLO_SIZE) throw new SegmentError("handshake", `hello: ${length} bytes, expected ${HELLO_SIZE}`);
  return { doorbell: view.getUint32(HELLO_DOORBELL, true) };
}

export function encodeAnswer(answer: Answer): Uint8Array {
  const reason = new TextEncoder().encode(answer.reason).subarray(0, MAX_REASON);
  const bytes = new Uint8Array(ANSWER_SIZE + reason.length);
  const view = header(bytes, HS_TYPE_ANSWER);
  view.setUint32(ANS_STATUS, answer.status, true);
  view.setUint32(ANS_SEGMENT_SIZE, answer.segmentSize, true);
  view.setUint32(ANS_RX, answer.rx, true);
  view.setUint32(ANS_TX, answer.tx, true);
  view.setUint32(ANS_REASON_LENGTH, reason.length, true);
  bytes.set(reason, ANS_REASON);
  return bytes;
}

export function decodeAnswer(bytes: Uint8Array, length: number): Answer {
  const view = check(bytes, length, ANSWER_SIZE, HS_TYPE_ANSWER, "answer");
  const status = view.getUint32(ANS_STATUS, true);
  if (status > ANSWER_NO_ROOM) throw new SegmentError("handshake", `answer: unknown status ${status}`);
  const reasonLength = view.getUint32(ANS_REASON_LENGTH, true);
  if (reasonLength > MAX_REASON || ANSWER_SIZE + reasonLength !== length) {
    throw new SegmentError("handshake", `answer: a reason of ${reasonLength} bytes in a message of ${length}`);
  }
  const reason = new TextDecoder().decode(bytes.subarray(ANS_REASON, ANS_REASON + reasonLength));
  if (status !== ANSWER_ACCEPTED && reasonLength === 0) {
    throw new SegmentError("handshake", "answer: a refusal without a reason");
  }
  return {
    status,
    segmentSize: view.getUint32(ANS_SEGMENT_SIZE, true),
    rx: view.getUint32(ANS_RX, true),
    tx: view.getUint32(ANS_TX, true),
    reason,
  };
}
