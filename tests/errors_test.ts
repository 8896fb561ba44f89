// Bad input gets a clear error and changes nothing: no pool entry, no file in /dev/shm.
import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { OsError, PAGE_SIZE, SegmentMain } from "../mod.ts";
import { LAYOUT_VERSION, MIN_SEGMENT_SIZE as MIN, PROC_LOCK_BASE } from "../src/layout.ts";
import { O_RDWR } from "../ffi/symbols.ts";
import { isCode, shmEntries, uniqueName } from "./helpers.ts";

function nothingLeft(sm: SegmentMain, prefix: string): void {
  assert.equal(sm.size, 0, "no pool entry");
  assert.deepEqual([...sm], []);
  assert.deepEqual(shmEntries(prefix), [], "no file in /dev/shm");
}

test("bad names are refused before anything is created", () => {
  const prefix = uniqueName("badname");
  using sm = new SegmentMain();
  for (const type of ["shm", "memfd", "private"] as const) {
    assert.throws(() => sm.create({ type, name: "", size: 8192 }), RangeError);
    assert.throws(() => sm.create({ type, name: `${prefix}/x`, size: 8192 }), { name: "RangeError", message: /"\/"/ });
    assert.throws(() => sm.create({ type, name: `${prefix}\0x`, size: 8192 }), { name: "RangeError", message: /NUL/ });
    assert.throws(() => sm.create({ type, name: prefix + "é".repeat(128), size: 8192 }), {
      name: "RangeError",
      message: /at most 255/,
    });
    assert.throws(() => sm.create({ type, name: 42 as unknown as string, size: 8192 }), TypeError);
    // /dev/shm/. and /dev/shm/.. are directories: shm_open said EEXIST to create, EINVAL to attach.
    for (const name of [".", ".."]) {
      assert.throws(() => sm.create({ type, name, size: 8192 }), { name: "RangeError", message: /"\." or "\.\."/ });
    }
  }
  assert.throws(() => sm.attach({ type: "shm", name: "" }), RangeError);
  assert.throws(() => sm.attach({ type: "shm", name: "a/b" }), RangeError);
  assert.throws(() => sm.attach({ type: "shm", name: ".." }), { name: "RangeError", message: /"\." or "\.\."/ });
  nothingLeft(sm, prefix);
});

test("bad sizes are refused", () => {
  const name = uniqueName("badsize");
  using sm = new SegmentMain();
  for (const type of ["shm", "memfd", "private"] as const) {
    for (const size of [0, -1, 1.5, NaN, Infinity, "4096" as unknown as number, 2 ** 32]) {
      assert.throws(() => sm.create({ type, name, size }), RangeError, `${type} size ${size}`);
    }
  }
  nothingLeft(sm, name);
});

test("bad types and attach arguments are refused", () => {
  using sm = new SegmentMain();
  assert.throws(() => sm.create({ type: "disk" as "shm", name: "x", size: 8192 }), RangeError);
  assert.throws(() => sm.attach({ type: "disk" } as unknown as { type: "shm"; name: string }), RangeError);
  assert.throws(() => sm.attach({ type: "memfd", fd: -1 }), RangeError);
  assert.throws(() => sm.attach({ type: "memfd", pid: -5, fd: 3 }), RangeError);
  assert.throws(
    () => sm.attach({ type: "private", buffer: new ArrayBuffer(8) as unknown as SharedArrayBuffer }),
    TypeError,
  );
  assert.throws(() => new SegmentMain({ timeoutSeconds: -1 }), RangeError);
  assert.throws(() => new SegmentMain({ timeoutSeconds: NaN }), RangeError);
  assert.equal(sm.size, 0);
});

test("attaching a name that does not exist: OsError shm_open ENOENT", () => {
  const name = uniqueName("missing");
  using sm = new SegmentMain();
  assert.throws(() => sm.attach({ type: "shm", name }), (e: unknown) => {
    assert.ok(e instanceof OsError);
    assert.equal(e.call, "shm_open");
    assert.equal(e.code, "ENOENT");
    assert.equal(e.errno, 2);
    assert.match(e.message, /^shm_open: ENOENT/);
    return true;
  });
  assert.throws(() => sm.attach({ type: "memfd", pid: 999_999_999, fd: 3 }), {
    name: "OsError",
    call: "open",
    code: "ENOENT",
  });
  nothingLeft(sm, name);
});

test("a second create of an existing name: EEXIST, and the first is untouched", () => {
  const name = uniqueName("exists");
  using sm = new SegmentMain();
  const first = sm.create({ type: "shm", name, size: 16384 });
  first.allocFifo(10)!.tag = 77;
  assert.throws(() => sm.create({ type: "shm", name, size: 16384 }), {
    name: "OsError",
    call: "shm_open",
    code: "EEXIST",
  });
  assert.equal(sm.size, 1);
  using other = new SegmentMain();
  const att = other.attach({ type: "shm", name });
  assert.equal(att.size, 16384);
  assert.equal(att.fifos()[0].tag, 77);
});

/** Writes a header page (and more) into /dev/shm by hand. */
function forge(name: string, size: number, edit: (view: DataView) => void): void {
  const bytes = new Uint8Array(Math.max(size, PAGE_SIZE));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, 0x314d5653, true); // magic
  view.setUint32(4, LAYOUT_VERSION, true); // version
  view.setBigUint64(8, BigInt(size), true);
  view.setUint32(16, 1, true);
  view.setUint32(20, 1, true); // shm
  view.setInt32(24, 1, true); // ready
  view.setUint32(512, PAGE_SIZE, true); // bump
  edit(view);
  writeFileSync(`/dev/shm/${name}`, bytes.subarray(0, size), { mode: 0o600 });
}

test("foreign or broken headers: bad-magic, bad-version, bad-header, type-mismatch, abandoned, timeout", () => {
  const name = uniqueName("forged");
  using sm = new SegmentMain({ timeoutSeconds: 0.2 });
  const cases: [string, number, (v: DataView) => void][] = [
    ["bad-magic", MIN, (v) => v.setUint32(0, 0xdeadbeef, true)],
    ["bad-version", MIN, (v) => v.setUint32(4, 99, true)],
    ["bad-header", MIN, (v) => v.setBigUint64(8, 1n << 20n, true)], // larger than the file
    ["bad-header", MIN, (v) => v.setBigUint64(8, 5000n, true)], // not whole pages
    ["bad-header", MIN, (v) => v.setUint32(20, 9, true)], // unknown type
    ["bad-header", MIN, (v) => v.setUint32(28, 4000, true)], // name too long
    ["type-mismatch", MIN, (v) => v.setUint32(20, 2, true)], // says memfd
    // Never ready and nobody holds the creator's slot: abandoned at once, not after the timeout.
    ["abandoned", MIN, (v) => (v.setUint32(0, 0, true), v.setInt32(24, 0, true))],
    ["abandoned", MIN, (v) => v.setInt32(24, 0, true)],
  ];
  for (const [code, size, edit] of cases) {
    try {
      forge(name, size, edit);
      const started = performance.now();
      assert.throws(() => sm.attach({ type: "shm", name }), isCode(code), code);
      if (code === "abandoned") assert.ok(performance.now() - started < 100, "abandoned is seen at once");
      assert.equal(sm.size, 0);
    } finally {
      rmSync(`/dev/shm/${name}`, { force: true });
    }
  }
  // A creator that lives (holds its slot) but never finishes: the attach waits out its timeout.
  for (const size of [MIN, 100]) {
    forge(name, size, (v) => (v.setUint32(0, 0, true), v.setInt32(24, 0, true)));
    const fd = sm.os.shmOpen(`/${name}`, O_RDWR, 0);
    try {
      assert.ok(sm.os.lockByte(fd, PROC_LOCK_BASE), "the test plays the creator");
      const started = performance.now();
      assert.throws(() => sm.attach({ type: "shm", name }), isCode("timeout"));
      assert.ok(performance.now() - started >= 150, "waited for the live creator");
    } finally {
      sm.os.close(fd);
      rmSync(`/dev/shm/${name}`, { force: true });
    }
  }
  // Too short, and nobody holds the creator's slot: abandoned after a grace period of one second.
  forge(name, 100, () => {});
  try {
    assert.throws(
      () => new SegmentMain({ timeoutSeconds: 5 }).attach({ type: "shm", name }),
      isCode("abandoned"),
    );
  } finally {
    rmSync(`/dev/shm/${name}`, { force: true });
  }
  nothingLeft(sm, name);
});

test("a memfd that can still shrink is refused (it could SIGBUS the attacher)", () => {
  using sm = new SegmentMain();
  const os = sm.os;
  const template = sm.create({ type: "private", name: "unsealed", size: MIN });
  const fd = os.memfdCreate("unsealed", 0);
  try {
    os.ftruncate(fd, MIN);
    const mapping = os.mmap(fd, MIN);
    const bytes = new Uint8Array(mapping.buffer);
    bytes.set(template.u8);
    bytes[20] = 2; // type memfd
    os.munmap(mapping);
    assert.throws(() => sm.attach({ type: "memfd", fd }), isCode("not-sealed"));
    assert.equal(sm.size, 1);
  } finally {
    os.close(fd);
  }
});

test("memfd attach of an shm fd is a type mismatch", () => {
  const name = uniqueName("mismatch");
  using sm = new SegmentMain();
  sm.create({ type: "shm", name, size: 8192 });
  const fd = sm.os.shmOpen(`/${name}`, 2, 0);
  try {
    assert.throws(() => sm.attach({ type: "memfd", fd }), isCode("type-mismatch"));
  } finally {
    sm.os.close(fd);
  }
  assert.equal(sm.size, 1);
});
