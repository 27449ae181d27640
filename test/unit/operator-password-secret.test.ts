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
import {
  passwordCredentialsOwnedBy,
  relayCredentialWatches,
} from "../../operator/controllers/relaycredential/controller.js";
import type { CredentialObject } from "../../operator/objects.js";
import { ClusterState, type Caches } from "../../operator/state.js";
import { listCaches, listInformer, relayObject } from "../support/operator-fixtures.js";
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

  it("a MailRelay or DKIM credential that comes to own a credential's Secret requeues that credential", () => {
    const password = (name: string, secret: string) =>
      ({
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "RelayCredential",
        metadata: { name, namespace: "mail", generation: 1 },
        spec: {
          type: "password",
          usage: "outbound",
          username: "u",
          passwordSecretRef: { name: secret, key: "p" },
        },
      }) as unknown as CredentialObject;
    const dkim = (generation: number, secret: string) =>
      ({
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "RelayCredential",
        metadata: { name: "corp-dkim", namespace: "mail", generation },
        spec: {
          type: "dkim",
          usage: "outbound",
          dkim: { selector: "s", privateKeySecretRef: { name: secret, key: "k" } },
        },
      }) as unknown as CredentialObject;
    const grabToken = password("grab-token", "edge-admin");
    const grabDkim = password("grab-dkim", "dkim-key");
    const app = password("app", "app-login");
    const edge = (generation: number, token?: string) => {
      const r = relayObject("edge", { relay: "edge" }, generation);
      if (token) (r.spec as { admin?: unknown }).admin = { tokenSecretRef: { name: token, key: "token" } };
      return r;
    };
    const credentials = [grabToken, grabDkim, app, dkim(1, "dkim-key")];
    // one event of one informer through the controller's watches, as the informer delivers it
    const emit = (
      cache: "credentials" | "relays",
      t: "add" | "update" | "delete",
      o: unknown,
      old?: unknown,
    ) => {
      const quiet = { on: () => undefined };
      const caches = {
        ...listCaches([edge(2, "edge-admin")]),
        credentials: { ...listInformer(credentials), ...quiet },
      } as unknown as Caches;
      (caches as unknown as Record<string, object>).relays = { ...caches.relays, ...quiet };
      (caches as unknown as Record<string, object>)[cache] = {
        ...caches[cache],
        on: (h: (t: string, o: unknown, old?: unknown) => void) => h(t, o, old),
      };
      const seen: string[] = [];
      for (const w of relayCredentialWatches(new ClusterState(caches))) w.start((k) => seen.push(k));
      return seen.sort();
    };
    // the relay starts naming edge-admin as its admin token: the credential that took it is judged again
    assert.deepEqual(emit("relays", "update", edge(2, "edge-admin"), edge(1)), ["mail/grab-token"]);
    // and when it stops naming it
    assert.deepEqual(emit("relays", "update", edge(3), edge(2, "edge-admin")), ["mail/grab-token"]);
    // a status write of the relay (same generation) requeues no credential
    assert.deepEqual(emit("relays", "update", edge(2, "edge-admin"), edge(2, "edge-admin")), []);
    // a DKIM credential moving onto a Secret: the credential that used it, and the DKIM one itself
    assert.deepEqual(emit("credentials", "update", dkim(2, "dkim-key"), dkim(1, "other")), [
      "mail/corp-dkim",
      "mail/grab-dkim",
    ]);
    assert.deepEqual(emit("credentials", "delete", dkim(1, "dkim-key")), ["mail/grab-dkim"]);
    assert.deepEqual(passwordCredentialsOwnedBy(credentials, { relays: [edge(1)] }), []);
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
