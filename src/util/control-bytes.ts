/**
 * The control bytes (below 0x20) of a buffer, counted 16 at a time with
 * WebAssembly SIMD: JSON allows only tab, LF and CR, and only between tokens.
 * `controlBytes` returns -1 when the buffer holds any other control byte, else
 * how many tabs, LFs and CRs it holds. A JSON scanner that counts the ones it
 * saw between tokens then knows, without looking at every byte of every
 * string, whether a string held one.
 *
 * The module is assembled below from its opcodes (it is 150 bytes; no
 * toolchain needed). Where WebAssembly is unavailable (`node --jitless`) a
 * plain loop does the same.
 */

// The function, in WebAssembly text format:
//
// (func (export "scan") (param $len i32) (result i32)
//   (local $p i32) (local $n i32) (local $v v128) (local $ctl v128) (local $ws v128)
//   block $done
//     loop $next
//       (br_if $done (i32.ge_u (local.get $p) (local.get $len)))
//       (local.set $v (v128.load (local.get $p)))
//       ;; the 16 bytes hold a control byte: rare in JSON, where LF between tokens is the common one
//       (if (v128.any_true (local.tee $ctl (i8x16.lt_u (local.get $v) (i8x16.splat (i32.const 0x20)))))
//         (then
//           (local.set $ws (v128.or (v128.or (i8x16.eq $v 9) (i8x16.eq $v 10)) (i8x16.eq $v 13)))
//           (if (v128.any_true (v128.andnot (local.get $ctl) (local.get $ws))) (then (return (i32.const -1))))
//           (local.set $n (i32.add (local.get $n) (i32.popcnt (i8x16.bitmask (local.get $ws)))))))
//       (local.set $p (i32.add (local.get $p) (i32.const 16)))
//       br $next
//     end
//   end
//   local.get $n)
//
// The caller pads the last block with spaces, so bytes past $len are never control bytes.

const SIMD = 0xfd;
const op = {
  block: 0x02, loop: 0x03, if: 0x04, end: 0x0b, br: 0x0c, brIf: 0x0d, return: 0x0f,
  localGet: 0x20, localSet: 0x21, localTee: 0x22, i32Const: 0x41, i32GeU: 0x4f, i32Popcnt: 0x69, i32Add: 0x6a,
  void: 0x40, i32: 0x7f, v128: 0x7b,
} as const;
const simd = { load: 0x00, splat: 0x0f, eq: 0x23, ltU: 0x26, andnot: 0x4f, or: 0x50, anyTrue: 0x53, bitmask: 0x64 } as const;
const LEN = 0, P = 1, N = 2, V = 3, CTL = 4, WS = 5;

function eqByte(b: number): number[] {
  return [op.localGet, V, op.i32Const, b, SIMD, simd.splat, SIMD, simd.eq];
}

const BODY = [
  // locals: 2 x i32, 3 x v128
  0x02, 0x02, op.i32, 0x03, op.v128,
  op.block, op.void,
  op.loop, op.void,
  op.localGet, P, op.localGet, LEN, op.i32GeU, op.brIf, 1,
  op.localGet, P, SIMD, simd.load, 0x00, 0x00, op.localSet, V,
  op.localGet, V, op.i32Const, 0x20, SIMD, simd.splat, SIMD, simd.ltU, op.localTee, CTL,
  SIMD, simd.anyTrue,
  op.if, op.void,
  ...eqByte(0x09), ...eqByte(0x0a), SIMD, simd.or, ...eqByte(0x0d), SIMD, simd.or, op.localSet, WS,
  op.localGet, CTL, op.localGet, WS, SIMD, simd.andnot, SIMD, simd.anyTrue,
  op.if, op.void, op.i32Const, 0x7f /* -1 */, op.return, op.end,
  op.localGet, N, op.localGet, WS, SIMD, simd.bitmask, op.i32Popcnt, op.i32Add, op.localSet, N,
  op.end,
  op.localGet, P, op.i32Const, 16, op.i32Add, op.localSet, P,
  op.br, 0,
  op.end,
  op.end,
  op.localGet, N,
  op.end,
];

/** Memory pages of the module (64 KiB each): the largest piece scanned per call. */
const PAGES = 4;
const CHUNK = PAGES * 65536;

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function name(s: string): number[] {
  return [s.length, ...Buffer.from(s, "ascii")];
}

const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, [1, 0x60, 1, op.i32, 1, op.i32]), // type 0: (i32) -> i32
  ...section(3, [1, 0]), // function 0 has type 0
  ...section(5, [1, 0x00, PAGES]), // one memory, PAGES pages, no maximum
  ...section(7, [2, ...name("m"), 0x02, 0, ...name("scan"), 0x00, 0]),
  ...section(10, [1, ...uleb(BODY.length), ...BODY]),
]);

interface Scanner {
  readonly mem: Uint8Array;
  readonly scan: (len: number) => number;
}

/** The part of the WebAssembly API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { m: { buffer: ArrayBuffer }; scan: (len: number) => number } };
}

function instantiate(api: WasmApi | undefined): Scanner | null {
  if (api === undefined) return null;
  try {
    const { m, scan } = new api.Instance(new api.Module(MODULE)).exports;
    return { mem: new Uint8Array(m.buffer), scan };
  } catch {
    return null;
  }
}

const wasm = instantiate((globalThis as { WebAssembly?: WasmApi }).WebAssembly);

/** -1 if `buf` holds a byte below 0x20 other than tab, LF and CR; else how many of those it holds. */
export function controlBytes(buf: Uint8Array): number {
  if (wasm === null) return controlBytesPlain(buf);
  const { mem, scan } = wasm;
  let total = 0;
  for (let off = 0; off < buf.length; off += CHUNK) {
    const len = Math.min(CHUNK, buf.length - off);
    mem.set(off === 0 && len === buf.length ? buf : buf.subarray(off, off + len), 0);
    const padded = (len + 15) & ~15;
    if (padded > len) mem.fill(0x20, len, padded);
    const n = scan(len);
    if (n < 0) return -1;
    total += n;
  }
  return total;
}

/** The same count, one byte at a time (no WebAssembly). */
export function controlBytesPlain(buf: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i] as number;
    if (c >= 0x20) continue;
    if (c !== 0x09 && c !== 0x0a && c !== 0x0d) return -1;
    n++;
  }
  return n;
}

/** Whether the WebAssembly scanner is in use (false under `--jitless`). */
export const controlBytesSimd = wasm !== null;
