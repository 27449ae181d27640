// A STARTTLS-stripping man in the middle between the relay and Postfix: under required/verify the
// relay sends nothing in clear (the proxy sees no MAIL, AUTH or DATA), the message stays queued with
// a logged reason; under opportunistic it is delivered (in clear, as the policy allows).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import type { Relay } from "../../relay/relay.js";
import { makeLeaf } from "../support/certs.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture, type TestPorts } from "../support/relay.js";
import { startStripProxy, type StripProxy } from "../support/strip-proxy.js";
import { swaks } from "../support/swaks.js";

type Tls = NonNullable<RelayConfigInput["policies"]>[number]["outbound"]["tls"];

let f: RelayFixture;
let caFile: string;
let ports: TestPorts;
let relay: Relay;
let logs: LogCapture;
let postfix: PostfixPeer;
let proxy: StripProxy;

async function configure(tls: Tls, authCredential?: string): Promise<void> {
  await f.configure(
    {
      credentials: {
        login: {
          type: "password",
          usage: "outbound",
          username: "relay-edge",
          passwordFile: "secrets/login/password",
        },
      },
      policies: [
        {
          name: "partner/mitm",
          domains: ["partner.test"],
          outbound: {
            tls,
            nextHop: { host: proxy.host, port: proxy.port },
            // the risk accepted so that required still tries AUTH: the stripping is what is tested
            ...(authCredential ? { authCredential, authUnauthenticatedPeer: true } : {}),
          },
        },
      ],
    },
    {
      files: {
        "secrets/ca/ca.crt": await readFile(caFile),
        "secrets/login/password": "pw",
      },
    },
  );
  await relay?.checkConfig();
}

async function submit(tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: ports.smtp,
    from: "alice@local.test",
    to: `bob@partner.test`,
    headers: { "X-Test-Id": tag },
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

const deferral = (id: string) => () =>
  logs.find((l) => l.event === "delivery" && l.queueId === id && l.result === "deferred");

before(async () => {
  f = await relayFixture("relay-strip");
  ports = f.ports;
  caFile = f.ca.certFile;
  const mx = await makeLeaf(f.ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  postfix = await startPostfix({ domains: ["partner.test"], tls: "offer", cert: mx });
  proxy = await startStripProxy({ upstream: { host: postfix.host, port: postfix.port }, mode: "strip" });
  await configure({ mode: "required" });
  ({ relay, logs } = await f.start());
});

after(async () => {
  await f?.stop(async () => {
    await proxy?.stop();
    await postfix?.stop();
  });
});

describe("relay behind a STARTTLS-stripping proxy", () => {
  for (const tls of [
    { mode: "required" },
    { mode: "verify", caFile: "secrets/ca/ca.crt", matchNames: ["mx.partner.test"] },
  ] as Tls[]) {
    it(`${tls.mode}: nothing in clear, stays queued (TLS_NOT_OFFERED)`, async () => {
      await configure(tls, "login");
      const sessions = proxy.sessions;
      const id = await submit(`strip-${tls.mode}`);
      const l = await waitFor("deferral", deferral(id));
      assert.equal(l.code, "TLS_NOT_OFFERED");
      assert.equal(l.reason, "STARTTLS not offered by the server");
      await waitFor("a retry", () => (proxy.sessions >= sessions + 2 ? true : undefined), 10_000);
      assert.equal(proxy.sawMailFrom, false);
      assert.equal(proxy.sawAuth, false);
      assert.equal(proxy.sawData, false);
      assert.deepEqual((await postfix.messages()).length, 0);
      assert.ok(relay.status().queue.depth >= 1);
    });
  }

  it("required: a proxy that answers STARTTLS with 454 -> deferred, nothing in clear", async () => {
    proxy.mode = "reject-starttls";
    await configure({ mode: "required" });
    const id = await submit("strip-454");
    await waitFor("deferral", () =>
      logs.find(
        (l) =>
          l.event === "delivery" &&
          l.queueId === id &&
          l.result === "deferred" &&
          l.code === "TLS_STARTTLS_REFUSED",
      ),
    );
    assert.equal(proxy.sawMailFrom, false);
    assert.equal(proxy.sawData, false);
    proxy.mode = "strip";
  });

  it("opportunistic: delivered (clear, since STARTTLS was not offered); the queued ones too", async () => {
    await configure({ mode: "opportunistic" });
    const msgs = await postfix.waitForMessages(3, 30_000);
    const tags = msgs.map((m) => m.headers["x-test-id"]?.[0]).sort();
    assert.deepEqual(tags, ["strip-454", "strip-required", "strip-verify"]);
    assert.equal(proxy.sawData, true);
    assert.doesNotMatch(msgs[0]!.headers.received?.[0] ?? "", /ESMTPS/);
  });
});
