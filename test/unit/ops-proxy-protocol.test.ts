// PROXY protocol header parsing (relay/inbound/proxy-protocol.ts), with the byte vectors of the
// HAProxy specification (proxy-protocol.txt, sections 2.1 and 2.2).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseProxyHeader, toV1Line, V2_SIGNATURE } from "../../relay/inbound/proxy-protocol.js";

const ok = (buf: Buffer) => {
  const r = parseProxyHeader(buf);
  assert.equal(r.status, "ok", JSON.stringify(r));
  if (r.status !== "ok") throw new Error("unreachable");
  return r;
};

describe("PROXY protocol v1", () => {
  it("parses the spec's TCP4 example and leaves the client's bytes after it", () => {
    const buf = Buffer.from("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nEHLO x\r\n", "latin1");
    const r = ok(buf);
    assert.deepEqual(r.header, {
      version: 1,
      command: "PROXY",
      source: { address: "192.168.0.1", port: 56324 },
      destination: { address: "192.168.0.11", port: 443 },
    });
    assert.equal(buf.subarray(r.length).toString(), "EHLO x\r\n");
  });

  it("parses TCP6 and the 107-byte worst case (UNKNOWN with addresses)", () => {
    const f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const six = ok(Buffer.from(`PROXY TCP6 ${f} ${f} 65535 65535\r\n`));
    assert.equal(six.header.source?.address, f);
    const worst = `PROXY UNKNOWN ${f} ${f} 65535 65535\r\n`;
    assert.equal(worst.length, 107);
    const u = ok(Buffer.from(worst));
    assert.deepEqual(u.header, { version: 1, command: "PROXY" });
    assert.deepEqual(ok(Buffer.from("PROXY UNKNOWN\r\n")).header, { version: 1, command: "PROXY" });
  });

  it("asks for more bytes until the CRLF; refuses garbage, bad addresses and over-long lines", () => {
    assert.equal(parseProxyHeader(Buffer.from("PROX")).status, "incomplete");
    assert.equal(parseProxyHeader(Buffer.from("PROXY TCP4 1.2.3.4")).status, "incomplete");
    assert.equal(parseProxyHeader(Buffer.from("EHLO client\r\n")).status, "invalid");
    assert.equal(parseProxyHeader(Buffer.from("PROXY TCP4 1.2.3.4 ::1 1 2\r\n")).status, "invalid");
    assert.equal(parseProxyHeader(Buffer.from("PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n")).status, "invalid");
    assert.equal(parseProxyHeader(Buffer.from("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n")).status, "invalid");
    assert.equal(parseProxyHeader(Buffer.from("PROXY " + "x".repeat(120))).status, "invalid");
  });
});

describe("PROXY protocol v2", () => {
  it("parses a TCP over IPv4 header (signature, 0x21 PROXY, 0x11 TCP4, 12 address bytes) and skips TLVs", () => {
    const buf = Buffer.concat([
      V2_SIGNATURE,
      Buffer.from([0x21, 0x11, 0x00, 0x0f]), // v2 PROXY, AF_INET STREAM, 12 + 3 bytes
      Buffer.from([127, 0, 0, 5, 10, 0, 0, 1]), // src, dst
      Buffer.from([0xdc, 0x05, 0x00, 0x19]), // src port 56325, dst port 25
      Buffer.from([0x04, 0x00, 0x00]), // PP2_TYPE_NOOP TLV, empty
      Buffer.from("EHLO x\r\n"),
    ]);
    const r = ok(buf);
    assert.deepEqual(r.header, {
      version: 2,
      command: "PROXY",
      source: { address: "127.0.0.5", port: 56325 },
      destination: { address: "10.0.0.1", port: 25 },
    });
    assert.equal(buf.subarray(r.length).toString(), "EHLO x\r\n");
    assert.equal(toV1Line(r.header), "PROXY TCP4 127.0.0.5 10.0.0.1 56325 25\r\n");
  });

  it("parses TCP over IPv6 (0x21) with canonical addresses", () => {
    const src = Buffer.alloc(16);
    src.writeUInt16BE(0x2001, 0);
    src.writeUInt16BE(0x0db8, 2);
    src.writeUInt16BE(0x0005, 14);
    const dst = Buffer.alloc(16);
    dst[15] = 1;
    const r = ok(
      Buffer.concat([
        V2_SIGNATURE,
        Buffer.from([0x21, 0x21, 0x00, 36]),
        src,
        dst,
        Buffer.from([0, 80, 0, 25]),
      ]),
    );
    assert.deepEqual(r.header.source, { address: "2001:db8::5", port: 80 });
    assert.deepEqual(r.header.destination, { address: "::1", port: 25 });
    assert.equal(toV1Line(r.header), "PROXY TCP6 2001:db8::5 ::1 80 25\r\n");
  });

  it("LOCAL (0x20, a health check) and UNSPEC keep the proxy's address", () => {
    const local = ok(Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]));
    assert.deepEqual(local.header, { version: 2, command: "LOCAL" });
    assert.equal(local.length, 16);
    assert.equal(toV1Line(local.header), "PROXY UNKNOWN\r\n");
    const unix = ok(Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x31, 0x00, 216]), Buffer.alloc(216)]));
    assert.equal(unix.header.source, undefined);
  });

  it("waits for the whole header; refuses a wrong version or command and short address blocks", () => {
    assert.equal(parseProxyHeader(V2_SIGNATURE.subarray(0, 5)).status, "incomplete");
    assert.equal(
      parseProxyHeader(Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0x00, 12, 127])])).status,
      "incomplete",
    );
    const bad = (b: number[]) =>
      parseProxyHeader(Buffer.concat([V2_SIGNATURE, Buffer.from(b), Buffer.alloc(36)])).status;
    assert.equal(bad([0x11, 0x11, 0x00, 12]), "invalid"); // version 1 in a v2 header
    assert.equal(bad([0x22, 0x11, 0x00, 12]), "invalid"); // command 2
    assert.equal(bad([0x21, 0x11, 0x00, 8]), "invalid"); // TCP4 needs 12 bytes
    assert.equal(bad([0x21, 0x21, 0x00, 12]), "invalid"); // TCP6 needs 36 bytes
  });
});
