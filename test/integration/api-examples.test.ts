// Every manifest in examples/ is accepted by a real apiserver with Sealpost's CRDs installed, applied the
// way examples/README.md says (server-side dry run into the `mail` namespace). What the apiserver
// returns (defaults filled in) must also be what the zod schemas produce: the operator parses objects
// with them, so the two must agree on every field and every default.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { MailDomainPolicy, MailRelay, RelayCredential } from "../../api/v1alpha1/index.js";
import { installSealpostCrds } from "../support/api-crds.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { repoRoot } from "../support/toolchain.js";

const dir = join(repoRoot, "examples");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml"))
  .sort();
const schemas = { MailRelay, MailDomainPolicy, RelayCredential } as const;

interface Item {
  kind: string;
  metadata: { name: string };
  spec?: unknown;
}

describe("examples/ on a real apiserver", () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startControlPlane();
    await installSealpostCrds(cp);
    await cp.kubectl(["create", "namespace", "mail"]);
  });
  after(async () => {
    await cp?.stop();
  });

  it("has the examples the README promises", () => {
    // one per scenario, including OpenPGP (WKD), DKIM, a policy exception and the secure fallback
    assert.deepEqual(files, [
      "00-mailrelay.yaml",
      "01-partner-tls-required.yaml",
      "02-doug-verified-tls-auth.yaml",
      "03-partner-inbound-tls-auth.yaml",
      "04-smime-partner.yaml",
      "05-default-opportunistic.yaml",
      "06-openpgp-wkd.yaml",
      "07-dkim-signing.yaml",
      "08-policy-exception.yaml",
      "09-secure-fallback.yaml",
    ]);
    const readme = readFileSync(join(dir, "README.md"), "utf8");
    for (const f of files) assert.ok(readme.includes(`\`${f}\``), `examples/README.md lists ${f}`);
    // the kustomize overlay applies its copies by name (deploy/kustomize/render.sh copies the files)
    const overlay = readFileSync(
      join(repoRoot, "deploy/kustomize/overlays/examples/mail/kustomization.yaml"),
      "utf8",
    );
    for (const f of files) assert.ok(overlay.includes(`  - ${f}\n`), `the examples overlay lists ${f}`);
  });

  for (const file of files) {
    it(`kubectl apply --dry-run=server -n mail -f examples/${file}`, async () => {
      const { stdout } = await cp.kubectl([
        "apply",
        "--dry-run=server",
        "-n",
        "mail",
        "-f",
        join(dir, file),
        "-o",
        "json",
      ]);
      const out = JSON.parse(stdout) as Item | { items: Item[] };
      const items = "items" in out ? out.items : [out];
      assert.ok(items.length > 0);
      for (const item of items) {
        const schema = schemas[item.kind as keyof typeof schemas];
        if (!schema) continue;
        const parsed = schema.safeParse(item);
        assert.ok(parsed.success, `${item.kind}/${item.metadata.name}: ${parsed.error?.message}`);
        // A field the CRD has and zod lacks would be stripped here; a default only one side has would differ.
        assert.deepEqual(
          parsed.data.spec,
          item.spec,
          `${item.kind}/${item.metadata.name}: zod and CRD disagree`,
        );
      }
    });
  }
});
