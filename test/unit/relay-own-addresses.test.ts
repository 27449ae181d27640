// relay/net/own-addresses.ts: the host's addresses for loop detection and the destination filter,
// read from the kernel at most once per TTL (it was read at every hop of every delivery).
import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { describe, it } from "node:test";
import { OWN_ADDRESSES_TTL_MS, ownAddresses } from "../../relay/net/own-addresses.js";

describe("the relay's own addresses", () => {
  it("are every interface address, loopback included", () => {
    const now = performance.now() + 10 * OWN_ADDRESSES_TTL_MS; // past any earlier read
    const fresh = Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address));
    assert.deepEqual([...ownAddresses(now)].sort(), fresh.sort());
    assert.ok(ownAddresses(now).includes("127.0.0.1"));
  });

  it("are read once per TTL, and again after it", () => {
    const t = performance.now() + 100 * OWN_ADDRESSES_TTL_MS;
    const first = ownAddresses(t);
    assert.equal(ownAddresses(t + OWN_ADDRESSES_TTL_MS - 1), first, "read again within the TTL");
    assert.notEqual(ownAddresses(t + OWN_ADDRESSES_TTL_MS), first, "not read again after the TTL");
  });

  it("are read again when the clock goes back (never trusted across a jump)", () => {
    const t = performance.now() + 200 * OWN_ADDRESSES_TTL_MS;
    const first = ownAddresses(t);
    assert.notEqual(ownAddresses(t - 1), first);
  });
});
