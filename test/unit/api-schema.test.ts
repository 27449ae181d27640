// The pure parts of the API: the zod -> structural OpenAPI conversion, the unit conversions the
// operator uses, and the examples seen through the zod schemas (the apiserver's view is in
// test/integration/api-examples.test.ts).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { z } from "zod";
import { SchemaError, toStructuralSchema, undocumentedFields, type JsonSchema } from "../../api/openapi.js";
import {
  durationSeconds,
  MailDomainPolicy,
  MailRelay,
  quantityBytes,
  RelayCredential,
  TlsMode,
} from "../../api/v1alpha1/index.js";
import { MODE_FLOORS } from "../../api/v1alpha1/tls-floors.js";
import { repoRoot } from "../support/toolchain.js";

describe("toStructuralSchema", () => {
  it("turns a zod object into a structural schema: no $schema, no additionalProperties: false, formats for integers", () => {
    const s = toStructuralSchema(
      z
        .object({
          replicas: z.int32().min(0).describe("pods"),
          total: z.int().min(0).describe("count"),
          port: z.int32().min(1).max(65535).describe("port"),
          name: z
            .string()
            .max(10)
            .regex(/^[a-z]+$/)
            .describe("name"),
        })
        .strict()
        .describe("root"),
    );
    assert.deepEqual(s, {
      description: "root",
      type: "object",
      properties: {
        replicas: { description: "pods", type: "integer", format: "int32", minimum: 0 },
        total: { description: "count", type: "integer", format: "int64", minimum: 0 },
        port: { description: "port", type: "integer", minimum: 1, maximum: 65535 },
        name: { description: "name", type: "string", maxLength: 10, pattern: "^[a-z]+$" },
      },
      required: ["replicas", "total", "port", "name"],
    });
  });

  it("carries x-kubernetes-* from .meta() and keeps defaulted fields optional", () => {
    const rule = { rule: "self.a != ''", message: "a must not be empty" };
    const s = toStructuralSchema(
      z
        .object({
          a: z.string().default("x").describe("a"),
          b: z.array(z.string()).max(3).describe("b").meta({ "x-kubernetes-list-type": "set" }),
        })
        .describe("o")
        .meta({ "x-kubernetes-validations": [rule] }),
    );
    assert.deepEqual(s["x-kubernetes-validations"], [rule]);
    assert.equal((s.properties as Record<string, JsonSchema>).b!["x-kubernetes-list-type"], "set");
    assert.deepEqual(s.required, ["b"]);
  });

  it("fills an object's default with its fields' defaults, as the apiserver would apply them", () => {
    const inner = z
      .object({ port: z.int32().min(1).max(65535).default(25).describe("p") })
      .prefault({})
      .describe("i");
    const s = toStructuralSchema(z.object({ listener: inner, other: inner }).prefault({}).describe("o"));
    assert.deepEqual(s.default, { listener: { port: 25 }, other: { port: 25 } });
    assert.deepEqual((s.properties as Record<string, JsonSchema>).listener!.default, { port: 25 });
  });

  it("refuses unions, naming the field; a literal becomes a one-value enum", () => {
    assert.throws(
      () =>
        toStructuralSchema(z.object({ spec: z.object({ x: z.union([z.string(), z.number()]) }) }), ".spec"),
      (e: Error) => e instanceof SchemaError && /^\.spec\.spec\.x: "anyOf" is not allowed/.test(e.message),
    );
    const s = toStructuralSchema(z.object({ k: z.literal("v").describe("k") }));
    assert.deepEqual((s.properties as Record<string, unknown>).k, {
      description: "k",
      type: "string",
      enum: ["v"],
    });
  });

  it("lists the fields without a description", () => {
    const s = toStructuralSchema(
      z.object({
        a: z.string().describe("a"),
        b: z.object({ c: z.string() }).describe("b"),
        d: z.array(z.object({ e: z.string() })).describe("d"),
      }),
    );
    assert.deepEqual(undocumentedFields(s), [".b.c", ".d[*].e"]);
  });
});

describe("units", () => {
  it("durationSeconds reads the API's durations", () => {
    assert.equal(durationSeconds("60s"), 60);
    assert.equal(durationSeconds("1h30m"), 5400);
    assert.equal(durationSeconds("120h"), 432000);
    assert.equal(durationSeconds("1500ms"), 1.5);
    assert.throws(() => durationSeconds("5d"), /invalid duration "5d"/);
  });

  it("quantityBytes reads the API's sizes", () => {
    assert.equal(quantityBytes("50Mi"), 50 * 1024 * 1024);
    assert.equal(quantityBytes("10G"), 10e9);
    assert.equal(quantityBytes("1.5Ki"), 1536);
    assert.equal(quantityBytes("1000"), 1000);
    assert.throws(() => quantityBytes("10GB"), /invalid size "10GB"/);
  });

  it("finding 7: MailRelay dns.servers takes ip, ip:port and [v6]:port, nothing else", () => {
    const servers = MailRelay.shape.spec.shape.dns.unwrap().shape.servers;
    for (const ok of ["10.0.0.53", "10.0.0.53:5353", "fd00::53", "[fd00::53]:53"])
      assert.ok(servers.safeParse([ok]).success, ok);
    for (const bad of ["kube-dns.kube-system", "10.0.0.53:", "https://1.1.1.1/dns-query"])
      assert.equal(servers.safeParse([bad]).success, false, bad);
  });

  it("every mode's floor is in the TLS mode description (kubectl explain)", () => {
    const text = TlsMode.description ?? "";
    for (const [mode, f] of Object.entries(MODE_FLOORS))
      assert.ok(text.includes(`- ${mode} (floor ${f.floor}): ${f.text}`), mode);
  });
});

describe("examples/", () => {
  const dir = join(repoRoot, "examples");
  const docs = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(dir, file), "utf8")).map((d) => ({
        file,
        obj: d.toJS() as {
          kind: string;
          metadata: { name: string; namespace?: string };
          data?: Record<string, string>;
          stringData?: Record<string, string>;
        },
      })),
    );
  const schemas: Record<string, z.ZodType> = { MailRelay, MailDomainPolicy, RelayCredential };

  it("cover the scenarios: a relay, each TLS mode the README shows, the credential types, S/MIME, OpenPGP, DKIM, an exception, the fallback, the catch-all", () => {
    const policies = docs
      .filter((d) => d.obj.kind === "MailDomainPolicy")
      .map((d) => MailDomainPolicy.parse(d.obj));
    const modes = new Set(policies.map((p) => p.spec.outbound.tls.mode));
    for (const m of ["required", "verify", "opportunistic"] as const)
      assert.ok(modes.has(m), `an example with mode ${m}`);
    assert.ok(
      policies.some((p) => p.spec.outbound.auth && p.spec.inbound?.require === "tls+auth"),
      "AUTH both ways",
    );
    assert.ok(
      policies.some((p) => p.spec.outbound.messageEncryption?.smime),
      "S/MIME",
    );
    assert.ok(
      policies.some((p) => p.spec.domains.includes("*")),
      "the catch-all",
    );
    assert.ok(
      policies.some((p) => p.spec.outbound.messageEncryption?.openpgp?.recipientKeys.webKeyDirectory),
      "OpenPGP from a Web Key Directory",
    );
    assert.ok(
      policies.some((p) => p.spec.outbound.tls.fallback?.action === "smime"),
      "the secure fallback",
    );
    assert.ok(
      policies.some((p) => p.spec.exceptions?.length),
      "a policy exception",
    );
    const credentials = docs
      .filter((d) => d.obj.kind === "RelayCredential")
      .map((d) => RelayCredential.parse(d.obj));
    assert.deepEqual(
      new Set(credentials.map((c) => c.spec.type)),
      new Set(["password", "clientCertificate", "dkim"]),
    );
    const relays = docs.filter((d) => d.obj.kind === "MailRelay").map((d) => MailRelay.parse(d.obj));
    assert.equal(relays.length, 1);
    assert.ok(relays[0]!.spec.dkim?.length, "DKIM signing");
  });

  it("are namespace-less (applied with -n) and parse with the zod schemas", () => {
    for (const { file, obj } of docs) {
      assert.equal(
        obj.metadata.namespace,
        undefined,
        `${file}: ${obj.kind}/${obj.metadata.name} names a namespace`,
      );
      const schema = schemas[obj.kind];
      if (schema) assert.ok(schema.safeParse(obj).success, `${file}: ${obj.kind}/${obj.metadata.name}`);
    }
  });

  it("hold no secret material, only marked placeholders", () => {
    for (const { file, obj } of docs) {
      for (const value of Object.values<string>({ ...obj.data, ...obj.stringData })) {
        assert.match(
          value,
          /REPLACE-ME/,
          `${file}: ${obj.kind}/${obj.metadata.name} has a value that is not a placeholder`,
        );
        assert.doesNotMatch(value, /BEGIN [A-Z ]*PRIVATE KEY/);
      }
    }
  });
});
