// CRC-32 of a concatenation from the CRCs of its parts (zlib's crc32_combine, which node:zlib does not
// export). The journal (journal.ts) computes the CRC of a record's meta and body as the body arrives,
// before the segment that seeds the record's CRC is known, and joins the two when the round seals
// it: the same CRC as one pass over the whole record, without a second pass over the body. Pure.

const POLY = 0xedb88320; // CRC-32's polynomial, reflected

/** a(x) * b(x) mod p(x), both reflected (bit 31 is x^0). */
function multModP(a: number, b: number): number {
  let p = 0;
  for (let m = 0x80000000; m; m >>>= 1) {
    if (a & m) {
      p ^= b;
      if (!(a & (m - 1))) break;
    }
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** X2N[k] = x^(2^k) mod p(x). */
const X2N: number[] = [];
for (let p = 0x40000000, k = 0; k < 32; k++) {
  X2N.push(p);
  p = multModP(p, p);
}

/** x^(n * 2^k) mod p(x). */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  for (; n > 0; n = Math.floor(n / 2), k++) if (n % 2) p = multModP(X2N[k & 31]!, p);
  return p;
}

/** The CRC-32 of A then B, given `crcA` (or any seed standing for A), B's own CRC and length. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multModP(x2nModP(lengthB, 3), crcA) ^ crcB) >>> 0;
}
