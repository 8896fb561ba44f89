// The connection budget of a SegmentMain's doorbell and bells (ffi/admission.ts): which connection
// goes when a new one comes and the budget is full. The floods themselves are in wake_test.ts and
// connection_test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Admission } from "../ffi/admission.ts";

test("a full budget drops the oldest connection of the process that holds the most; a legitimate one-connection waker stays", () => {
  const budget = new Admission(4);
  const dropped: string[] = [];
  const admit = (pid: number, label: string) => budget.admit(pid, () => dropped.push(label));
  admit(100, "waker");
  admit(200, "flood-1");
  admit(200, "flood-2");
  admit(200, "flood-3");
  admit(300, "new waker"); // full: the flood's oldest goes
  admit(200, "flood-4");
  assert.deepEqual(dropped, ["flood-1", "flood-2"]);
  assert.equal(budget.size, 4);
  assert.equal(budget.dropped, 2);
});

test("a closed connection frees its place (once), and a dropped one's release does nothing", () => {
  const budget = new Admission(2);
  const dropped: string[] = [];
  const a = budget.admit(1, () => dropped.push("a"));
  budget.admit(1, () => dropped.push("b"));
  a();
  a(); // idempotent
  assert.equal(budget.size, 1);
  budget.admit(2, () => dropped.push("c"));
  assert.equal(dropped.length, 0, "room was made by the close");
  const d = budget.admit(3, () => dropped.push("d")); // full: the oldest of the most (pid 1, then the oldest) goes
  assert.deepEqual(dropped, ["b"]);
  d();
  assert.equal(budget.size, 1);
});

test("the budget is a quarter of the fd limit, from 16 to 4096; a drop that throws does not stop the admission", () => {
  assert.equal(Admission.forFileLimit(128).limit, 32);
  assert.equal(Admission.forFileLimit(20).limit, 16);
  assert.equal(Admission.forFileLimit(1 << 20).limit, 4096);
  assert.throws(() => new Admission(0), RangeError);
  const budget = new Admission(1);
  budget.admit(1, () => {
    throw new Error("closed already");
  });
  budget.admit(2, () => {});
  assert.equal(budget.size, 1);
});
