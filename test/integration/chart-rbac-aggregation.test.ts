// Issue 17, RBAC aggregation: the chart's ClusterRoles carry the aggregate-to-view/edit/admin labels,
// and kube-controller-manager's clusterrole-aggregation controller folds them into the built-in
// roles, so a namespace user bound to `view` reads Sealpost's kinds and one bound to `edit` or `admin`
// manages them, in that namespace only, and nobody but the operator writes their status. Checked
// with `kubectl auth can-i --as` against a real apiserver.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { helmRelease } from "../support/chart.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";

const run = promisify(execFile);
const KINDS = ["mailrelays", "maildomainpolicies", "relaycredentials"].map((k) => `${k}.sealpost.dev`);

describe("issue 17: Sealpost's kinds in the built-in view, edit and admin roles", () => {
  let cp: ControlPlane;

  /** `kubectl auth can-i` as `user`: "yes" or "no" (it exits 1 for no). */
  const can = async (user: string, ...args: string[]): Promise<string> => {
    const r = await run(join(cp.bin, "kubectl"), [
      "--kubeconfig",
      cp.kubeconfigPath,
      "auth",
      "can-i",
      `--as=${user}`,
      ...args,
    ]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? "" }));
    return r.stdout.trim();
  };

  before(async () => {
    cp = await startControlPlane({ controllerManager: true, controllers: ["clusterrole-aggregation"] });
    await helmRelease(cp, "install");
    for (const ns of ["mail", "other"]) await cp.kubectl(["create", "namespace", ns]);
    for (const [user, role] of [
      ["viola", "view"],
      ["eddie", "edit"],
      ["ada", "admin"],
    ] as const)
      await cp.kubectl([
        "-n",
        "mail",
        "create",
        "rolebinding",
        user,
        `--clusterrole=${role}`,
        `--user=${user}`,
      ]);
    // the aggregation controller folds the chart's rules in: wait until it has, for all three roles
    for (let i = 0; i < 300; i++) {
      const done = await Promise.all([
        can("viola", "list", KINDS[0]!, "-n", "mail"),
        can("eddie", "delete", KINDS[0]!, "-n", "mail"),
        can("ada", "create", KINDS[0]!, "-n", "mail"),
      ]);
      if (done.every((a) => a === "yes")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await cp?.stop();
  });

  it("view reads every kind in its namespace and changes none", async () => {
    for (const k of KINDS) {
      for (const verb of ["get", "list", "watch"])
        assert.equal(await can("viola", verb, k, "-n", "mail"), "yes", `${verb} ${k}`);
      for (const verb of ["create", "update", "patch", "delete"])
        assert.equal(await can("viola", verb, k, "-n", "mail"), "no", `${verb} ${k}`);
    }
  });

  it("edit and admin manage policies, credentials and relays (rbac.aggregate.mailRelaysInEdit)", async () => {
    for (const user of ["eddie", "ada"])
      for (const k of KINDS)
        for (const verb of ["get", "create", "update", "patch", "delete", "deletecollection"])
          assert.equal(await can(user, verb, k, "-n", "mail"), "yes", `${user} ${verb} ${k}`);
  });

  it("nobody but the operator writes status, and nothing reaches another namespace", async () => {
    for (const user of ["viola", "eddie", "ada"])
      for (const k of KINDS) {
        assert.equal(
          await can(user, "patch", k, "--subresource=status", "-n", "mail"),
          "no",
          `${user} ${k}/status`,
        );
        assert.equal(await can(user, "get", k, "-n", "other"), "no", `${user} ${k} in other`);
      }
  });

  it("with mailRelaysInEdit=false, MailRelays are for admin only", async () => {
    await helmRelease(cp, "upgrade", ["rbac.aggregate.mailRelaysInEdit=false"]);
    const relays = KINDS[0]!;
    for (let i = 0; i < 300 && (await can("eddie", "create", relays, "-n", "mail")) === "yes"; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(await can("eddie", "create", relays, "-n", "mail"), "no");
    assert.equal(await can("eddie", "get", relays, "-n", "mail"), "yes", "edit still reads relays");
    assert.equal(await can("eddie", "create", KINDS[1]!, "-n", "mail"), "yes", "and manages policies");
    for (let i = 0; i < 300 && (await can("ada", "create", relays, "-n", "mail")) !== "yes"; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(await can("ada", "create", relays, "-n", "mail"), "yes");
  });
});
