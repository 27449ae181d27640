// The queue volume's reserve (relay/queue/space-reserve.ts) from the MailRelay: spec.queue.minFree
// reaches the relay config as queue.minFreeBytes; absent, the relay derives it from the message size
// limit (1.5 x inbound.maxMessageSize, at least 8 MiB).
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { reserveBytes } from "../../relay/queue/space-reserve.js";
import { clusterView, mailRelay, renderRelay } from "../support/operator-fixtures.js";

const MiB = 1024 * 1024;

describe("spec.queue.minFree", () => {
  it("absent: the relay's default, 1.5 x maxMessageSize (75 MiB for the default 50Mi)", () => {
    const { compiled } = renderRelay(mailRelay(), clusterView());
    assert.equal(compiled.config.queue.minFreeBytes, undefined);
    const c = compiled.config;
    assert.equal(reserveBytes(c.inbound.maxMessageSize, c.queue.minFreeBytes), 75 * MiB);
  });

  it("set: in bytes, 0 included (no reserve)", () => {
    for (const [minFree, bytes] of [
      ["100Mi", 100 * MiB],
      ["0", 0],
    ] as const) {
      const { compiled } = renderRelay(mailRelay({ queue: { minFree } }), clusterView());
      assert.equal(compiled.config.queue.minFreeBytes, bytes, minFree);
    }
  });
});
