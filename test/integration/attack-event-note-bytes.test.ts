// Attack (observability review, session 18): an Event's note is cut to 1,024 characters
// (operator/runtime/events.ts renderEvent), but the apiserver's limit is 1,024 bytes of UTF-8
// (events.k8s.io/v1 note, "may not be more than 1024 bytes"), and it refuses the whole Event past
// it. Text from outside is not ASCII-only: a partner certificate's issuer (read from a relay's
// /status, up to 512 characters) goes into the PartnerCertificates=False message whose Warning
// Event tells the policy's owner that the partner's certificate expires. One issuer in a script of
// three UTF-8 bytes a character (a CA's name in Chinese, or whatever the next hop's certificate
// says) made that Warning an apiserver refusal, logged by the operator as "could not record event":
// nobody is warned.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { policyPartnerCertificates } from "../../operator/controllers/maildomainpolicy/conditions.js";
import { statusEvents } from "../../operator/controllers/status-write.js";
import { mergeConditions } from "../../operator/runtime/conditions.js";
import { EventRecorder } from "../../operator/runtime/events.js";
import { KubeClient, R, type KubeObject } from "../../operator/runtime/kube.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";

const NS = "default";

describe("attack: a Warning Event whose note is over 1,024 bytes is refused", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let regarding: KubeObject;
  const warnings: string[] = [];

  before(async () => {
    cp = await startControlPlane();
    client = new KubeClient(cp.kubeConfig);
    regarding = await client.create<KubeObject>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "partner-policy", namespace: NS },
    });
    regarding = { ...regarding, apiVersion: "v1", kind: "ConfigMap" };
  });

  after(async () => {
    await cp?.stop();
  });

  it("a partner certificate expiring, its issuer in a CJK script: the Warning is recorded", async () => {
    const now = new Date("2026-06-01T00:00:00Z");
    const condition = policyPartnerCertificates(
      {
        certificates: [
          {
            host: "mx1.partner.example",
            notAfter: "2026-06-05T00:00:00Z",
            issuer: `CN=${"证书颁发机构".repeat(80)}`,
            spki: "A".repeat(43) + "=",
            firstSeen: "2026-01-01T00:00:00Z",
            lastSeen: "2026-06-01T00:00:00Z",
          },
        ],
        windowSeconds: 14 * 86_400,
        now,
      },
      1,
    )!;
    assert.equal(condition.reason, "ExpiringSoon");
    const events = statusEvents("MailDomainPolicy", [], mergeConditions([], [condition], now));
    assert.equal(events.length, 1);
    const log = {
      warn: (o: { err?: string }) => void warnings.push(o.err ?? ""),
    } as unknown as ConstructorParameters<typeof EventRecorder>[2];
    await new EventRecorder(client, "operator-0", log).record(regarding, events[0]!);
    assert.deepEqual(warnings, [], "the apiserver refused the Event");
    const listed = await client.list<KubeObject & { reason?: string; note?: string }>(R.Event, NS);
    const ev = listed.items.find((e) => e.reason === "ExpiringSoon");
    assert.ok(ev, "the ExpiringSoon Warning is recorded");
    assert.match(ev.note ?? "", /^PartnerCertificates=False: partner certificates expiring/);
    assert.ok(Buffer.byteLength(ev.note ?? "") <= 1024);
  });
});
