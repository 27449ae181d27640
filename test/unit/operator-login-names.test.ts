// One username, one login per relay (operator/compile/login-names.ts, attack review session 9): who
// keeps a username several inbound RelayCredentials carry, and that the others are reported.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { shadowedLogins } from "../../operator/compile/login-names.js";
import type { Credential } from "../../relay/contract/config.js";

const login = (username: string): Credential => ({
  type: "password",
  usage: "inbound",
  username,
  passwordFile: `secrets/${username}/password`,
});
const created: Record<string, string> = {
  partner: "2026-01-01T00:00:00Z",
  copy: "2026-06-01T00:00:00Z",
  twin: "2026-06-01T00:00:00Z",
  apps: "2026-09-01T00:00:00Z",
};
const ages = (n: string) => created[n];

describe("one username, one login on a relay", () => {
  it("the oldest credential keeps a username; a look-alike spelling is the same name", () => {
    const out = shadowedLogins("mail", { partner: login("partner"), copy: login(" Partner ") }, [], ages);
    assert.deepEqual([...out.keys()], ["copy"]);
    assert.equal(out.get("copy")!.reason, "InvalidReference");
    assert.match(
      out.get("copy")!.message,
      /mail\/copy logs in as "partner", as RelayCredential mail\/partner \(created earlier\) does/,
    );
  });

  it("a relay-wide account keeps its username over an older policy's credential", () => {
    const out = shadowedLogins("mail", { apps: login("apps"), partner: login("apps") }, ["apps"], ages);
    assert.deepEqual([...out.keys()], ["partner"]);
    assert.match(out.get("partner")!.message, /a relay-wide account of this MailRelay/);
  });

  it("a tie keeps it for nobody; an unknown age counts as newest; outbound credentials and distinct names are left alone", () => {
    const tie = shadowedLogins("mail", { copy: login("x"), twin: login("x") }, [], ages);
    assert.deepEqual([...tie.keys()], ["copy", "twin"]);
    assert.match(tie.get("copy")!.message, /RelayCredentials mail\/twin created in the same second do/);
    assert.deepEqual(
      [...shadowedLogins("mail", { unknown: login("y"), partner: login("y") }, [], ages).keys()],
      ["unknown"],
    );
    const outbound: Credential = { ...login("z"), usage: "outbound" };
    assert.equal(
      shadowedLogins("mail", { partner: login("z"), out: outbound, apps: login("w") }, [], ages).size,
      0,
    );
  });
});
