// Which Secrets and credentials the relay uses on a user's behalf (attack review, session 9): the
// operator's floor (compile/password-secret.ts: a password credential never names the relay's own
// Secrets or a Secret holding keys or tokens) and the chart's admission policy (every Secret a user
// names must be one they may read, every RelayCredential one they may use), whose lists must cover
// every such name in the CRDs.
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

  it("a DKIM key a credential names is refused (an Opaque Secret, as docs/dkim.md creates it)", () => {
    const withDkim = relayOwnSecrets(
      [],
      [
        {
          metadata: { name: "corp-dkim" },
          spec: {
            type: "dkim",
            usage: "outbound",
            dkim: { selector: "s", privateKeySecretRef: { name: "dkim-key", key: "private.key" } },
          },
        } as never,
      ],
    );
    assert.match(
      passwordSecretRefusal("mail", "dkim-key", {}, withDkim) ?? "",
      /is RelayCredential corp-dkim's DKIM key/,
    );
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

describe("the chart's admission policy lists every Secret and RelayCredential name of the CRDs", () => {
  const refs = (what: RegExp): string[] => {
    const paths: string[] = [];
    const walk = (kind: string, s: Record<string, unknown> | undefined, path: string): void => {
      if (!s) return;
      const props = (s.properties ?? {}) as Record<string, Record<string, unknown>>;
      for (const [k, v] of Object.entries(props)) {
        if (k === "name" && what.test(typeof v.description === "string" ? v.description : ""))
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
    return paths;
  };
  const template = readFileSync(join(repoRoot, "charts/sealpost/templates/admissionpolicy.yaml"), "utf8");
  const listed = (name: string) => {
    const block = template.slice(template.indexOf(`{{- $${name} := list`));
    const end = block.indexOf("}}");
    return new Set(
      [...block.slice(0, end).matchAll(/\(list "(\w+)" "([\w.]+)"\)/g)].map((m) => `${m[1]} .${m[2]}`),
    );
  };

  it("each Secret name of crds/ is judged by <release>-references (get on the Secret)", () => {
    const paths = refs(/Name of the Secret/);
    assert.ok(paths.length >= 13, paths.join("\n"));
    const judged = listed("secretRefs");
    // the one list (imagePullSecrets) has a validation of its own
    judged.add("mailrelays .spec.imagePullSecrets[].name");
    assert.match(template, /'spec\.imagePullSecrets\[\]\.name: one of '/);
    assert.deepEqual(
      paths.filter((p) => !judged.has(p)),
      [],
      "Secret references the admission policy does not judge",
    );
  });

  it("each RelayCredential name of a policy is judged (use on it); a MailRelay's spec needs use on all", () => {
    const paths = refs(/Name of the RelayCredential/);
    assert.ok(paths.length >= 6, paths.join("\n"));
    const judged = listed("credentialRefs");
    assert.deepEqual(
      paths.filter((p) => !p.startsWith("mailrelays ") && !judged.has(p)),
      [],
      "RelayCredential references of policies the admission policy does not judge",
    );
    assert.match(
      template,
      /request\.resource\.resource != 'mailrelays' \|\| !variables\.judged \|\|\s+authorizer\.group\('sealpost\.dev'\)\.resource\('relaycredentials'\)\.namespace\(request\.namespace\)\.check\('use'\)/,
    );
  });
});
