// Issue 17: what `sealpost import postfix` writes is valid against the real API. The fixtures'
// manifests (policy file with transport and sasl_passwd; and with a relayhost) are applied to a real
// apiserver with Sealpost's CRDs (server-side dry run, schema and CEL rules included), and what comes
// back carries the fields the importer wrote.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { render } from "../../cli/import-postfix/command.js";
import { importPostfix, PASSWORD_PLACEHOLDER, type ImportInput } from "../../cli/import-postfix/import.js";
import { MailDomainPolicy, RelayCredential } from "../../api/v1alpha1/index.js";
import { installSealpostCrds } from "../support/api-crds.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";

const FIXTURES = join(import.meta.dirname, "../fixtures/postfix-import");
const fixture = (name: string) => ({ name, text: readFileSync(join(FIXTURES, name), "utf8") });
const schemas = { MailDomainPolicy, RelayCredential } as const;

interface Item {
  kind: string;
  metadata: { name: string };
  spec?: unknown;
}

const cases: [string, ImportInput][] = [
  [
    "policy, transport, sasl_passwd, main.cf",
    {
      policy: fixture("tls_policy"),
      transport: fixture("transport"),
      saslPasswd: fixture("sasl_passwd"),
      mainCf: fixture("main.cf"),
    },
  ],
  [
    "policy and sasl_passwd behind a relayhost",
    {
      policy: fixture("tls_policy"),
      saslPasswd: fixture("sasl_passwd"),
      relayhost: "[smtp.provider.example]:587",
    },
  ],
];

describe("sealpost import postfix output on a real apiserver", () => {
  let cp: ControlPlane;
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), "import-apply-"));
    cp = await startControlPlane();
    await installSealpostCrds(cp);
    await cp.kubectl(["create", "namespace", "mail"]);
  });
  after(async () => {
    await cp?.stop();
    await rm(work, { recursive: true, force: true });
  });

  for (const [title, input] of cases) {
    it(`kubectl apply --dry-run=server: ${title}`, async () => {
      const result = importPostfix({ ...input, namespace: "mail" });
      const file = join(work, "out.yaml");
      await writeFile(file, render(result));
      const { stdout } = await cp.kubectl(["apply", "--dry-run=server", "-f", file, "-o", "json"]);
      const out = JSON.parse(stdout) as Item | { items: Item[] };
      const items = "items" in out ? out.items : [out];
      assert.equal(items.length, result.manifests.length);
      for (const m of result.manifests) {
        const item = items.find((i) => i.kind === m.kind && i.metadata.name === m.metadata.name);
        assert.ok(item, `${m.kind}/${m.metadata.name} not returned`);
        const schema = schemas[m.kind as keyof typeof schemas];
        if (!schema) {
          // the Secret stub: the apiserver turns stringData into data; the placeholder, not a password
          const data = (item as { data?: Record<string, string> }).data ?? {};
          assert.equal(Buffer.from(data.password ?? "", "base64").toString(), PASSWORD_PLACEHOLDER);
          continue;
        }
        // the apiserver fills in defaults (nextHop.port, keyRef key); zod fills in the same ones
        const expected = schema.shape.spec.parse(m.spec);
        assert.deepEqual(item.spec, expected, `${m.kind}/${m.metadata.name}`);
      }
    });
  }
});
