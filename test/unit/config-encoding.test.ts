// The relay config as the ConfigMap carries it (relay/contract/config-encoding.ts, issue 18): compact
// JSON, gzipped; decoding is bounded and fails closed; 10,000 realistic policies on one relay fit a
// ConfigMap compressed (the figure is printed as a diagnostic and recorded in docs/benchmarks.md).
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { RelayConfig } from "../../relay/contract/config.js";
import {
  configJsonText,
  configMapJson,
  CONFIG_GZ_FILE,
  decodeConfig,
  encodeConfig,
  MAX_CONFIG_JSON_BYTES,
  MAX_CONFIG_STORED_BYTES,
} from "../../relay/contract/config-encoding.js";
import { renderConfigMap } from "../../operator/render/configmap.js";
import { withStored } from "../../operator/compile/relay-config.js";
import { fakeReconcilerDeps, policyObject, relayObject } from "../support/operator-fixtures.js";
import { realisticPolicySpec } from "../support/realistic-policies.js";

describe("config encoding", () => {
  it("round-trips, deterministically, and the JSON is compact", () => {
    const json = configJsonText({ a: [1, 2], b: { c: "d" } });
    assert.equal(json, '{"a":[1,2],"b":{"c":"d"}}');
    const gz = encodeConfig(json);
    assert.deepEqual(encodeConfig(json), gz);
    const back = decodeConfig(gz);
    assert.ok(back.ok);
    assert.equal(back.value.toString("utf8"), json);
    assert.equal(configMapJson({ binaryData: { [CONFIG_GZ_FILE]: gz.toString("base64") } }), json);
    // an older operator's ConfigMap (plain data) still reads
    assert.equal(configMapJson({ data: { "config.json": json } }), json);
  });

  it("a corrupt or truncated gzip fails closed (CONFIG_INVALID), never a partial config", () => {
    const gz = encodeConfig(configJsonText({ policies: Array.from({ length: 100 }, (_, i) => `p${i}`) }));
    for (const bad of [Buffer.from("not gzip"), gz.subarray(0, gz.length - 9), Buffer.alloc(0)]) {
      const r = decodeConfig(bad);
      assert.ok(!r.ok);
      assert.equal(r.code, "CONFIG_INVALID");
      assert.match(r.message, /^config\.json\.gz: /);
    }
    assert.equal(configMapJson({ binaryData: { [CONFIG_GZ_FILE]: "bm90IGd6aXA=" } }), undefined);
  });

  it("inflating stops at the limit (a small file cannot make the relay allocate gigabytes)", () => {
    const bomb = gzipSync(Buffer.alloc(MAX_CONFIG_JSON_BYTES + 1, 0x20));
    assert.ok(bomb.length < 256 * 1024);
    const r = decodeConfig(bomb);
    assert.ok(!r.ok);
    assert.match(r.message, new RegExp(`inflates to more than ${MAX_CONFIG_JSON_BYTES} bytes`));
    const small = decodeConfig(encodeConfig("x".repeat(1001)), 1000);
    assert.ok(!small.ok);
    assert.ok(decodeConfig(encodeConfig("x".repeat(1000)), 1000).ok);
  });

  it("10,000 realistic policies on one relay: compiled, compressed under the ConfigMap limit, decoded to the same config", (t) => {
    const n = 10_000;
    const r = relayObject("edge", { relay: "edge" });
    const pols = Array.from({ length: n }, (_, i) =>
      policyObject(`partner-${i}`, [], { spec: realisticPolicySpec(i) }),
    );
    const { deps } = fakeReconcilerDeps([r], pols);
    const c = withStored(deps.compiler.compile(MailRelay.parse(r)));
    assert.equal(c.included.length, n, [...c.problems.values()].flat()[0]?.message);
    const pretty = Buffer.byteLength(JSON.stringify(c.config, null, 2));
    const compact = Buffer.byteLength(c.json);
    t.diagnostic(
      `10,000 policies: indented JSON ${pretty} bytes, compact ${compact}, gzip ${c.stored.length} (limit ${MAX_CONFIG_STORED_BYTES}; base64 in a YAML/JSON body ${Math.ceil(c.stored.length / 3) * 4})`,
    );
    assert.ok(pretty > 1024 * 1024, "indented, it would not fit a ConfigMap (the issue)");
    assert.ok(c.stored.length < MAX_CONFIG_STORED_BYTES);
    const back = decodeConfig(c.stored);
    assert.ok(back.ok);
    assert.equal(back.value.toString("utf8"), c.json);
    assert.equal(RelayConfig.parse(JSON.parse(c.json)).policies.length, n);
    const cm = renderConfigMap({
      owner: {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        name: "edge",
        namespace: "mail",
        uid: "u",
      },
      configStored: c.stored,
      configHash: c.hash,
    } as Parameters<typeof renderConfigMap>[0]);
    assert.equal(cm.data, undefined);
    assert.equal(configMapJson(cm as { binaryData?: Record<string, string> }), c.json);
  });
});
