// The operator's part of time-limited exceptions (issue 19 item 5), pure: which go into the relay
// config at a time (Active only, within the relay's maxDuration, default 168h), each one's state on
// the status, the Events of a change, the Exceptions condition, and when to look again.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MailDomainPolicy } from "../../api/v1alpha1/index.js";
import {
  exceptionVerdicts,
  nextExceptionChange,
  relayMaxSeconds,
} from "../../operator/compile/exceptions.js";
import { compilePolicyEntry } from "../../operator/compile/policy.js";
import { compileRelayConfig } from "../../operator/compile/relay-config.js";
import { policyExceptions } from "../../operator/controllers/maildomainpolicy/conditions.js";
import { exceptionEvents, exceptionsStatus } from "../../operator/status/policy-exceptions.js";
import { clusterView, mailRelay } from "../support/operator-fixtures.js";

const T0 = Date.parse("2026-03-01T09:00:00Z");
const H = 3_600_000;
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.000Z$/, "Z");

const exception = (over: Record<string, unknown> = {}) => ({
  name: "cert-expired",
  domain: "partner.example",
  mode: "required" as const,
  reason: "TICKET-1",
  requestedBy: "alice@ops",
  from: iso(T0),
  until: iso(T0 + 24 * H),
  ...over,
});

const policy = (exceptions: unknown[]): MailDomainPolicy =>
  ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name: "partner", namespace: "mail", labels: { relay: "edge" } },
    spec: {
      domains: ["partner.example"],
      outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      exceptions,
    },
  }) as MailDomainPolicy;

const relay = (policyExceptions?: { maxDuration: string }) =>
  mailRelay(
    { policySelector: { matchLabels: { relay: "edge" } }, ...(policyExceptions ? { policyExceptions } : {}) },
    1,
  );

const view = clusterView({});

describe("operator: policy exceptions (issue 19 item 5)", () => {
  it("compiles only the exceptions active at the time, with their window; none without a clock", () => {
    const p = policy([
      exception(),
      exception({ name: "later", from: iso(T0 + 48 * H), until: iso(T0 + 50 * H) }),
    ]);
    const at = (now?: number) => compilePolicyEntry(p, "mail", view, now).policy?.outbound.tls.exceptions;
    assert.equal(at(undefined), undefined);
    assert.equal(at(T0 - 1), undefined);
    assert.deepEqual(at(T0), [
      {
        name: "cert-expired",
        domain: "partner.example",
        mode: "required",
        from: iso(T0),
        until: iso(T0 + 24 * H),
      },
    ]);
    assert.deepEqual(
      at(T0 + 49 * H)?.map((e) => e.name),
      ["later"],
    );
    assert.equal(at(T0 + 24 * H), undefined, "at until it is out of the config");
  });

  it("issue 19 item 5 attacker: a relay without a maximum configured allows 168h; a longer exception is left out of its config and Refused", () => {
    assert.equal(relayMaxSeconds(relay()), 168 * 3600);
    const long = policy([exception({ until: iso(T0 + 30 * 24 * H) })]);
    const entryAt = (raw: unknown) => compilePolicyEntry(raw, "mail", view, T0 + H);
    const compiled = compileRelayConfig(relay(), [long], view, entryAt);
    assert.deepEqual(compiled.included, ["mail/partner"], "the policy itself is enforced, as written");
    assert.equal(compiled.config.policies[0]!.outbound.tls.exceptions, undefined);
    assert.equal(compiled.config.policies[0]!.outbound.tls.mode, "verify");
    const v = exceptionVerdicts(long, T0 + H, [{ relay: "mail/edge", maxSeconds: relayMaxSeconds(relay()) }]);
    assert.equal(v[0]!.state, "Refused");
    assert.match(v[0]!.message, /spec\.exceptions\[0\]\.until/);
    assert.match(v[0]!.message, /spec\.policyExceptions\.maxDuration of MailRelay mail\/edge/);
    const c = policyExceptions(v, 3)!;
    assert.deepEqual([c.type, c.status, c.reason], ["Exceptions", "False", "ExceptionRefused"]);
    // a relay that allows it gets it
    const generous = compileRelayConfig(relay({ maxDuration: "1000h" }), [long], view, entryAt);
    assert.equal(generous.config.policies[0]!.outbound.tls.exceptions?.[0]?.name, "cert-expired");
  });

  it("attack (review, session 6): an exception never goes below the relay's catch-all; left out of its config and Refused", () => {
    // the administrator's floor: TLS 1.3 for every domain; a namespace user's policy meets it and then
    // asks for a week of opportunistic TLS 1.2 through an exception
    const catchAll = {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailDomainPolicy",
      metadata: {
        name: "all",
        namespace: "mail",
        labels: { relay: "edge" },
        creationTimestamp: iso(T0 - 48 * H),
      },
      spec: { domains: ["*"], outbound: { tls: { mode: "required", minVersion: "TLSv1.3" } } },
    } as unknown as MailDomainPolicy;
    const sneaky = policy([
      exception({ name: "cleartext", mode: "opportunistic", minVersion: "TLSv1.2" }),
      exception({ name: "fine", mode: "required" }),
    ]);
    sneaky.spec.outbound.tls = { mode: "verify", minVersion: "TLSv1.3", trustSystemRoots: true };
    const entryAt = (raw: unknown) => compilePolicyEntry(raw, "mail", view, T0 + H);
    const compiled = compileRelayConfig(relay(), [catchAll, sneaky], view, entryAt);
    assert.deepEqual(compiled.included, ["mail/all", "mail/partner"], "the policy itself meets the floor");
    const p = compiled.config.policies.find((x) => x.name === "mail/partner")!;
    assert.deepEqual(
      p.outbound.tls.exceptions?.map((e) => e.name),
      ["fine"],
      "the exception below the floor is not in the relay's config",
    );
    const floor = { key: "mail/all", mode: "required" as const, minVersion: "TLSv1.3" };
    const max = [{ relay: "mail/edge", maxSeconds: 168 * 3600, floor }];
    const v = exceptionVerdicts(sneaky, T0 + H, max);
    assert.deepEqual(
      v.map((x) => x.state),
      ["Refused", "Active"],
    );
    assert.match(v[0]!.message, /spec\.exceptions\[0\]\.mode opportunistic is weaker than required/);
    assert.match(v[0]!.message, /spec\.exceptions\[0\]\.minVersion TLSv1\.2 is lower than TLSv1\.3/);
    assert.match(v[0]!.message, /catch-all policy mail\/all/);
    // an expired one is history, not refused
    assert.equal(exceptionVerdicts(sneaky, T0 + 30 * H, max)[0]!.state, "Expired");
    // without a catch-all the same exception applies
    const alone = compileRelayConfig(relay(), [sneaky], view, entryAt);
    assert.deepEqual(
      alone.config.policies[0]!.outbound.tls.exceptions?.map((e) => e.name),
      ["cleartext", "fine"],
    );
  });

  it("each exception's state by the clock, the kubectl get line, the condition", () => {
    const p = policy([
      exception(),
      exception({ name: "later", from: iso(T0 + 48 * H), until: iso(T0 + 50 * H) }),
    ]);
    const max = [{ relay: "mail/edge", maxSeconds: 168 * 3600 }];
    const states = (now: number) => exceptionVerdicts(p, now, max).map((v) => v.state);
    assert.deepEqual(states(T0 - 1), ["Pending", "Pending"]);
    assert.deepEqual(states(T0), ["Active", "Pending"]);
    assert.deepEqual(states(T0 + 24 * H), ["Expired", "Pending"]);
    assert.deepEqual(states(T0 + 60 * H), ["Expired", "Expired"]);
    const active = exceptionVerdicts(p, T0 + H, max);
    assert.equal(exceptionsStatus(active).activeExceptions, "cert-expired");
    assert.equal(exceptionsStatus(exceptionVerdicts(p, T0 + 60 * H, max)).activeExceptions, undefined);
    const c = policyExceptions(active, 1)!;
    assert.deepEqual([c.status, c.reason], ["True", "Valid"]);
    assert.match(
      c.message,
      /cert-expired \(domain partner\.example, mode required, until .*TICKET-1; requested by alice@ops/,
    );
    assert.equal(policyExceptions([], 1), undefined);
  });

  it("Events: granted when it becomes Active, expired when it ends, refused once; nothing when nothing changed", () => {
    const p = policy([exception()]);
    const max = [{ relay: "mail/edge", maxSeconds: 168 * 3600 }];
    const pending = exceptionVerdicts(p, T0 - 1, max);
    const active = exceptionVerdicts(p, T0 + 1, max);
    const expired = exceptionVerdicts(p, T0 + 25 * H, max);
    assert.deepEqual(exceptionEvents(undefined, pending), []);
    assert.deepEqual(
      exceptionEvents(pending, active).map((e) => [e.type, e.reason]),
      [["Normal", "ExceptionGranted"]],
    );
    assert.deepEqual(exceptionEvents(active, active), []);
    assert.deepEqual(
      exceptionEvents(active, expired).map((e) => [e.type, e.reason]),
      [["Normal", "ExceptionExpired"]],
    );
    assert.deepEqual(exceptionEvents(undefined, expired), [], "one written already expired: no Event");
    const refused = exceptionVerdicts(p, T0 + 1, [{ relay: "mail/edge", maxSeconds: 3600 }]);
    assert.deepEqual(
      exceptionEvents(undefined, refused).map((e) => [e.type, e.reason]),
      [["Warning", "ExceptionRefused"]],
    );
    assert.deepEqual(exceptionEvents(refused, refused), []);
  });

  it("looks again just after the next from or until, at most an hour ahead", () => {
    const p = policy([exception()]);
    assert.equal(nextExceptionChange([p], T0 - 1000), 1050);
    assert.equal(nextExceptionChange([p], T0 + 24 * H - 10), 60);
    assert.equal(nextExceptionChange([p], T0 + 25 * H), undefined);
    assert.equal(nextExceptionChange([p], T0 - 30 * 24 * H), 3_600_000);
    assert.equal(nextExceptionChange([policy([])], T0), undefined);
  });
});
