// The demo's kubelet stand-in (projected volume -> files), its laptop overrides of config.json, the
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-argument -- assertions walk parsed JSON */
// placeholder filling of examples/, and the readable form of a delivery log line. Pure, no I/O.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fillPlaceholders, placeholders, readExamples, type Manifest } from "../../demo/examples.js";
import {
  applyOverrides,
  materialise,
  projectedSources,
  sha256,
  type ProjectedSource,
  type SourceLookup,
  unmountedConfigFiles,
} from "../../demo/materialise.js";
import { CONFIG_GZ_FILE, encodeConfig } from "../../relay/contract/config-encoding.js";
import { certificateOf, describeConditions, describeDelivery } from "../../demo/report.js";
import { minimalRelayConfig } from "../support/minimal-relay-config.js";
import { repoRoot } from "../support/toolchain.js";

const b64 = (s: string) => Buffer.from(s).toString("base64");

const sources: ProjectedSource[] = [
  { configMap: { name: "edge-config", items: [{ key: "config.json", path: "config.json" }] } },
  {
    secret: {
      name: "edge-tls",
      items: [
        { key: "tls.crt", path: "tls/tls.crt" },
        { key: "tls.key", path: "tls/tls.key" },
      ],
    },
  },
  {
    secret: {
      name: "doug-outbound",
      items: [{ key: "password", path: "secrets/doug-outbound/password" }],
      optional: true,
    },
  },
  { configMap: { name: "gone", items: [{ key: "ca.crt", path: "configmaps/gone/ca.crt" }], optional: true } },
];
const secrets = new Map<string, Record<string, string>>([
  ["edge-tls", { "tls.crt": b64("CERT"), "tls.key": b64("KEY") }],
  ["doug-outbound", { password: b64("s3cret") }],
]);
const lookup: SourceLookup = {
  configMap: (n: string) => (n === "edge-config" ? { data: { "config.json": "{}" } } : undefined),
  secret: (n: string) => (secrets.has(n) ? { data: secrets.get(n)! } : undefined),
};

describe("demo: materialise a projected volume", () => {
  it("reads the StatefulSet's config volume sources", () => {
    const sts = {
      spec: {
        template: { spec: { volumes: [{ name: "tmp" }, { name: "config", projected: { sources } }] } },
      },
    };
    assert.equal(projectedSources(sts).length, 4);
    assert.throws(
      () => projectedSources({ spec: { template: { spec: { volumes: [] } } } }),
      /no projected volume/,
    );
  });

  it("writes each item at its path, decoding Secrets, and skips absent optional sources", () => {
    const m = materialise(sources, lookup);
    assert.deepEqual(
      m.files.map((f) => [f.path, f.content.toString()]),
      [
        ["config.json", "{}"],
        ["tls/tls.crt", "CERT"],
        ["tls/tls.key", "KEY"],
        ["secrets/doug-outbound/password", "s3cret"],
      ],
    );
    assert.deepEqual(m.skipped, ["configMap gone (optional, absent)"]);
  });

  it("fails like kubelet on a missing required object or key, and refuses unsafe paths", () => {
    assert.throws(() => materialise([{ secret: { name: "nope" } }], lookup), /secret nope not found/);
    assert.throws(
      () =>
        materialise([{ secret: { name: "edge-tls", items: [{ key: "ca.crt", path: "ca.crt" }] } }], lookup),
      /no key ca.crt/,
    );
    assert.throws(
      () =>
        materialise(
          [{ configMap: { name: "edge-config", items: [{ key: "config.json", path: "../x" }] } }],
          lookup,
        ),
      /unsafe path/,
    );
    assert.throws(
      () =>
        materialise(
          [{ configMap: { name: "edge-config", items: [{ key: "config.json", path: "..data/x" }] } }],
          lookup,
        ),
      /unsafe path/,
    );
  });

  it("projects every key when a source has no items", () => {
    const m = materialise([{ secret: { name: "edge-tls" } }], lookup);
    assert.deepEqual(
      m.files.map((f) => f.path),
      ["tls.crt", "tls.key"],
    );
  });

  it("names the files the config needs that the volume does not mount yet (the ConfigMap leads the template)", () => {
    const config = minimalRelayConfig({ mtaSts: { caFile: "configmaps/tenant-ca/ca.crt" } });
    const gz = { path: CONFIG_GZ_FILE, content: encodeConfig(JSON.stringify(config)), from: "configMap" };
    const file = (path: string) => ({ path, content: Buffer.from("x"), from: "secret" });
    const before = { files: [gz, file("tls/tls.crt"), file("tls/tls.key")], skipped: [] };
    assert.deepEqual(unmountedConfigFiles(before), ["configmaps/tenant-ca/ca.crt"]);
    const after = { ...before, files: [...before.files, file("configmaps/tenant-ca/ca.crt")] };
    assert.deepEqual(unmountedConfigFiles(after), []);
  });
});

describe("demo: laptop overrides", () => {
  const config = JSON.stringify({
    version: 1,
    relay: "mail/edge",
    listeners: {
      smtp: { enabled: true, port: 25, host: "0.0.0.0" },
      smtps: { enabled: false, port: 465, host: "0.0.0.0" },
      submission: { enabled: true, port: 587, host: "0.0.0.0" },
    },
    admin: { port: 8080, host: "0.0.0.0" },
    queue: { dir: "/var/spool/sealpost", retry: { initial: 60, max: 3600 } },
    policies: [
      {
        name: "mail/doug",
        domains: ["doug.example"],
        outbound: { tls: { mode: "verify" }, nextHop: { host: "mx.doug.example", port: 587 } },
      },
    ],
  });
  const o = {
    host: "127.0.0.1",
    ports: { smtp: 2525, smtps: 4650, submission: 5870 },
    admin: 8081,
    queueDir: "/tmp/q",
    dnsServers: ["127.0.0.1:5353"],
    retry: { initial: 1, max: 2 },
    nextHopPorts: { "mail/doug": 10587 },
  };

  it("changes only the listed fields and lists every change", () => {
    const r = applyOverrides(config, o);
    const c = JSON.parse(r.json);
    assert.deepEqual(c.listeners.smtp, { enabled: true, port: 2525, host: "127.0.0.1" });
    assert.deepEqual(
      c.listeners.smtps,
      { enabled: false, port: 465, host: "0.0.0.0" },
      "a disabled listener stays as rendered",
    );
    assert.deepEqual(c.admin, { port: 8081, host: "127.0.0.1" });
    assert.deepEqual(c.queue, { dir: "/tmp/q", retry: { initial: 1, max: 2 } });
    assert.deepEqual(c.dns, { servers: ["127.0.0.1:5353"] });
    assert.deepEqual(c.policies[0].outbound.nextHop, { host: "mx.doug.example", port: 10587 });
    assert.deepEqual(c.policies[0].outbound.tls, { mode: "verify" });
    assert.deepEqual(
      r.overrides.map((x) => `${x.field}: ${x.from} -> ${x.to}`),
      [
        "listeners.smtp: 0.0.0.0:25 -> 127.0.0.1:2525",
        "listeners.submission: 0.0.0.0:587 -> 127.0.0.1:5870",
        "admin: 0.0.0.0:8080 -> 127.0.0.1:8081",
        "queue.dir: /var/spool/sealpost -> /tmp/q",
        'queue.retry: {"initial":60,"max":3600} -> {"initial":1,"max":2}',
        'dns.servers: (unset) -> ["127.0.0.1:5353"]',
        "policy mail/doug nextHop: mx.doug.example:587 -> mx.doug.example:10587",
      ],
    );
    // everything not overridden is untouched
    const strip = (x: Record<string, unknown>) => ({
      ...x,
      listeners: undefined,
      admin: undefined,
      queue: undefined,
      dns: undefined,
      policies: undefined,
    });
    assert.deepEqual(strip(c), strip(JSON.parse(config)));
  });

  it("reports the hash of the rendered and of the overridden text", () => {
    const r = applyOverrides(config, o);
    assert.equal(r.originalHash, sha256(config));
    assert.equal(r.hash, sha256(r.json));
    assert.notEqual(r.hash, r.originalHash);
  });

  it("refuses an enabled listener without a port and a next-hop override of a policy without one", () => {
    assert.throws(() => applyOverrides(config, { ...o, ports: { smtp: 1 } }), /submission/);
    assert.throws(
      () => applyOverrides(config, { ...o, nextHopPorts: { "mail/other": 1 } }),
      /no explicit next hop/,
    );
  });
});

describe("demo: examples/ placeholders", () => {
  it("finds every placeholder of examples/ and fills them", () => {
    const docs = readExamples(join(repoRoot, "examples")).flatMap((e) => e.docs);
    const ph = placeholders(docs);
    assert.ok(ph.includes("Secret/doug-outbound/password"));
    assert.ok(ph.includes("ConfigMap/doug-ca/ca.crt"));
    const filled = fillPlaceholders(docs, Object.fromEntries(ph.map((p) => [p, `demo:${p}`])));
    assert.deepEqual(placeholders(filled), []);
    const doug = filled.find((d) => d.kind === "Secret" && d.metadata?.name === "doug-outbound")!;
    assert.equal(doug.stringData!.password, "demo:Secret/doug-outbound/password");
    assert.equal(
      docs
        .find((d) => d.kind === "Secret" && d.metadata?.name === "doug-outbound")!
        .stringData!.password!.startsWith("REPLACE-ME"),
      true,
      "input untouched",
    );
  });

  it("names a placeholder it has no value for", () => {
    const docs: Manifest[] = [
      { kind: "Secret", metadata: { name: "x" }, stringData: { password: "REPLACE-ME", user: "u" } },
    ];
    assert.throws(() => fillPlaceholders(docs, {}), /Secret\/x\/password/);
  });
});

describe("demo: report", () => {
  it("describes a verified TLS delivery and a deferral", () => {
    const ok = {
      policy: "mail/doug",
      mode: "verify",
      nextHop: "mx.doug.example",
      address: "127.0.0.1",
      port: 587,
      session: {
        tlsVersion: "TLSv1.3",
        cipher: "TLS_AES_256_GCM_SHA384",
        peerSubject: "CN=mx.doug.example",
        peerVerified: true,
        authMechanism: "PLAIN",
        authOutcome: "ok",
      },
      result: "delivered",
      response: "250 2.0.0 Ok",
    };
    assert.deepEqual(describeDelivery(ok, "doug-ca"), [
      "policy       mail/doug (tls mode verify)",
      "next hop     mx.doug.example (127.0.0.1:587)",
      "TLS          TLSv1.3 (TLS_AES_256_GCM_SHA384)",
      "certificate  verified CN=mx.doug.example against doug-ca",
      "AUTH         PLAIN ok",
      "result       delivered (250 2.0.0 Ok)",
    ]);
    const no = {
      policy: "mail/partner-a",
      mode: "required",
      result: "deferred",
      code: "TLS_NOT_OFFERED",
      reason: "STARTTLS not offered by the server",
    };
    assert.equal(
      describeDelivery(no).at(-1),
      "result       deferred (TLS_NOT_OFFERED: STARTTLS not offered by the server)",
    );
    assert.equal(certificateOf(no), "none (no TLS session)");
    assert.match(
      certificateOf({ mode: "required", session: { tlsVersion: "TLSv1.3" } }),
      /not checked .*required/,
    );
  });

  it("lists conditions, also the ones not reported yet", () => {
    assert.deepEqual(
      describeConditions(
        [{ type: "Accepted", status: "True", reason: "Compiled", message: "m" }],
        ["Accepted", "Enforced"],
      ),
      ["Accepted  True    Compiled   m", "Enforced  (not reported yet)"],
    );
  });
});
