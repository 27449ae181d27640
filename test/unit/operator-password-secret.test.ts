// Which Secrets the relay uses on a user's behalf (attack review, session 9): the operator's floor
// (compile/password-secret.ts: a password credential never names the relay's own Secrets or a Secret
// holding keys or tokens) and the chart's admission policy (every Secret name a user writes must be
// one they may read), whose list of Secret references must cover every Secret name in the CRDs.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import {
  passwordSecretFacts,
  passwordSecretRefusal,
  relayOwnSecrets,
} from "../../operator/compile/password-secret.js";
import type { MailRelay } from "../../operator/api.js";
import { repoRoot } from "../support/toolchain.js";

const relay = (name: string, spec: Record<string, unknown> = {}) =>
  ({
    metadata: { name },
    spec: { hostname: "relay.example.com", certificate: { issuerRef: { name: "ca" } }, ...spec },
  }) as unknown as MailRelay & { metadata: { name: string } };

describe("a password credential's Secret (compile/password-secret.ts)", () => {
  const own = relayOwnSecrets([
    relay("edge", { admin: { tokenSecretRef: { name: "edge-admin", key: "token" } } }),
    relay("out", { certificate: { secretRef: { name: "corp-cert" } } }),
  ]);

  it("the relays' own Secrets are refused, naming whose they are and the fix", () => {
    for (const [secret, whose] of [
      ["edge-tls", "MailRelay edge's certificate"],
      ["edge-fleet", "MailRelay edge's fleet key"],
      ["edge-admin", "MailRelay edge's admin token"],
      ["edge-mta-sts", "MailRelay edge's MTA-STS certificate"],
      ["corp-cert", "MailRelay out's certificate"],
    ]) {
      const why = passwordSecretRefusal("mail", secret!, {}, own);
      assert.ok(why, secret);
      assert.match(why, new RegExp(`^passwordSecretRef: Secret mail/${secret} is ${whose}; `));
      assert.match(
        why,
        /put the password in a Secret of its own \(type Opaque or kubernetes\.io\/basic-auth\)/,
      );
    }
  });

  it("key- and token-holding types and operator-owned Secrets are refused; Opaque and basic-auth pass", () => {
    for (const type of [
      "kubernetes.io/tls",
      "kubernetes.io/service-account-token",
      "kubernetes.io/dockerconfigjson",
      "bootstrap.kubernetes.io/token",
    ])
      assert.match(
        passwordSecretRefusal("mail", "x", { type }, own) ?? "",
        new RegExp(`is type ${type}, which holds keys or tokens`),
      );
    const fleetLike = passwordSecretFacts({
      type: "Opaque",
      metadata: { ownerReferences: [{ apiVersion: "sealpost.dev/v1alpha1", controller: true }] },
    });
    assert.match(
      passwordSecretRefusal("mail", "other-fleet", fleetLike, own) ?? "",
      /belongs to the Sealpost operator/,
    );
    // an External Secrets Operator's Secret has a controller owner too, of another group
    const eso = passwordSecretFacts({
      type: "Opaque",
      metadata: { ownerReferences: [{ apiVersion: "external-secrets.io/v1", controller: true }] },
    });
    assert.equal(passwordSecretRefusal("mail", "partner-login", eso, own), undefined);
    assert.equal(passwordSecretRefusal("mail", "partner-login", {}, own), undefined);
    assert.equal(
      passwordSecretRefusal("mail", "partner-login", { type: "kubernetes.io/basic-auth" }, own),
      undefined,
    );
  });
});

describe("the chart's admission policy lists every Secret name of the CRDs", () => {
  it("each Secret reference path of crds/ is judged by <release>-secret-references", () => {
    const paths: string[] = [];
    const walk = (kind: string, s: Record<string, unknown> | undefined, path: string): void => {
      if (!s) return;
      const props = (s.properties ?? {}) as Record<string, Record<string, unknown>>;
      for (const [k, v] of Object.entries(props)) {
        if (k === "name" && /Name of the Secret/.test(typeof v.description === "string" ? v.description : ""))
          paths.push(`${kind} ${path}.name`);
        walk(kind, v, `${path}.${k}`);
      }
      if (s.items) walk(kind, s.items as Record<string, unknown>, `${path}[]`);
    };
    for (const f of readdirSync(join(repoRoot, "crds"))) {
      const crd = parse(readFileSync(join(repoRoot, "crds", f), "utf8")) as {
        spec: {
          names: { plural: string };
          versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[];
        };
      };
      walk(crd.spec.names.plural, crd.spec.versions[0]!.schema.openAPIV3Schema, "");
    }
    assert.ok(paths.length >= 13, paths.join("\n"));
    const template = readFileSync(join(repoRoot, "charts/sealpost/templates/admissionpolicy.yaml"), "utf8");
    const listed = new Set(
      [...template.matchAll(/\(list "(\w+)" "([\w.]+)"\)/g)].map((m) => `${m[1]} .${m[2]}`),
    );
    // the one list (imagePullSecrets) has a validation of its own
    listed.add("mailrelays .spec.imagePullSecrets[].name");
    assert.match(template, /'spec\.imagePullSecrets\[\]\.name: one of '/);
    assert.deepEqual(
      paths.filter((p) => !listed.has(p)),
      [],
      "Secret references the admission policy does not judge",
    );
  });
});
