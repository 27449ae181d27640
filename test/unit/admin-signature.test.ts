// The admin API's signed requests (relay/contract/admin-auth.ts): the token proves itself without
// crossing the network; a signature read on the way is good for nothing else.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ADMIN_SIGNATURE_WINDOW_MS,
  AdminSignatures,
  signAdminRequest,
} from "../../relay/contract/admin-auth.js";

const T0 = 1_800_000_000_000;

describe("admin API request signatures", () => {
  it("a signature verifies for its token, method, target and host, and carries no token", () => {
    const h = signAdminRequest("s3cret-token", "GET", "/status", "10.244.0.4:8080", T0);
    assert.ok(!h.includes("s3cret-token"));
    assert.ok(new AdminSignatures(() => T0).verify(h, "s3cret-token", "GET", "/status", "10.244.0.4:8080"));
  });

  it("refused: another token, method, path, query or pod; a replay; outside the time window; garbage", () => {
    const h = signAdminRequest("tok", "GET", "/status", "10.244.0.4:8080", T0);
    const v = () => new AdminSignatures(() => T0);
    assert.ok(!v().verify(h, "tok2", "GET", "/status", "10.244.0.4:8080"));
    assert.ok(!v().verify(h, "tok", "POST", "/status", "10.244.0.4:8080"));
    assert.ok(!v().verify(h, "tok", "GET", "/queue", "10.244.0.4:8080"));
    assert.ok(!v().verify(h, "tok", "GET", "/status?x=1", "10.244.0.4:8080"));
    assert.ok(!v().verify(h, "tok", "GET", "/status", "10.244.0.5:8080"));
    assert.ok(!v().verify(h, "", "GET", "/status", "10.244.0.4:8080"));
    const once = v();
    assert.ok(once.verify(h, "tok", "GET", "/status", "10.244.0.4:8080"));
    assert.ok(!once.verify(h, "tok", "GET", "/status", "10.244.0.4:8080"), "a replay");
    const late = new AdminSignatures(() => T0 + ADMIN_SIGNATURE_WINDOW_MS + 1);
    assert.ok(!late.verify(h, "tok", "GET", "/status", "10.244.0.4:8080"));
    const early = new AdminSignatures(() => T0 - ADMIN_SIGNATURE_WINDOW_MS - 1);
    assert.ok(!early.verify(h, "tok", "GET", "/status", "10.244.0.4:8080"));
    for (const bad of [undefined, "", "Bearer tok", h.replace(/s=[0-9a-f]/, "s=z"), `${h} `])
      assert.ok(!v().verify(bad, "tok", "GET", "/status", "10.244.0.4:8080"), String(bad));
  });

  it("nonces are forgotten only once their signatures have expired", () => {
    let now = T0;
    const v = new AdminSignatures(() => now);
    const a = signAdminRequest("tok", "GET", "/status", "h:1", T0);
    assert.ok(v.verify(a, "tok", "GET", "/status", "h:1"));
    now = T0 + ADMIN_SIGNATURE_WINDOW_MS;
    const b = signAdminRequest("tok", "GET", "/status", "h:1", now);
    assert.ok(v.verify(b, "tok", "GET", "/status", "h:1"));
    assert.ok(!v.verify(a, "tok", "GET", "/status", "h:1"), "a replay at the window's edge");
    now = T0 + ADMIN_SIGNATURE_WINDOW_MS + 1;
    assert.ok(!v.verify(a, "tok", "GET", "/status", "h:1"), "expired");
  });
});
