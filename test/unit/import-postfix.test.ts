// Issue 17, `sealpost import postfix`: every smtp_tls_policy_maps level and attribute, next-hop and
// subdomain keys, comments and continuation lines, sasl_passwd, relayhost and transport, each mapped
// to what Sealpost can express or refused with a warning that names the line, why and what to do.
// test/mail/import-postfix-fixtures.test.ts checks that the fixtures are files Postfix itself reads;
// test/integration/import-postfix-apply.test.ts applies the output to a real apiserver.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { runImport } from "../../cli/import-postfix/command.js";
import { importPostfix, PASSWORD_PLACEHOLDER, type ImportInput } from "../../cli/import-postfix/import.js";
import { parseTable } from "../../cli/import-postfix/table.js";
import { mapLevel, minVersionOf } from "../../cli/import-postfix/tls-level.js";
import { MailDomainPolicySpec, RelayCredentialSpec } from "../../api/v1alpha1/index.js";

const FIXTURES = join(import.meta.dirname, "../fixtures/postfix-import");
const fixture = (name: string) => ({ name, text: readFileSync(join(FIXTURES, name), "utf8") });

const policies = (input: ImportInput) => {
  const r = importPostfix(input);
  return {
    ...r,
    byDomain: new Map(
      r.manifests
        .filter((m) => m.kind === "MailDomainPolicy")
        .map((m) => [(m.spec as { domains: string[] }).domains[0]!, m.spec as MailDomainPolicySpec]),
    ),
    warningAt: (file: string, line: number) => r.warnings.filter((w) => w.file === file && w.line === line),
  };
};
/** The command's io, reading the fixtures, with what it printed. */
function captured() {
  const out: string[] = [];
  const err: string[] = [];
  const io = {
    out: (s: string) => out.push(s),
    err: (s: string) => err.push(s),
    read: (p: string) => readFileSync(join(FIXTURES, p), "utf8"),
  };
  return { out, err, io };
}
const policyOnly = (text: string) => policies({ policy: { name: "tls_policy", text } });

describe("Postfix table files", () => {
  it("joins continuation lines, skips comments and blank lines, folds keys, keeps the first duplicate", () => {
    const t = parseTable(
      [
        "# comment",
        "Partner.EXAMPLE   secure",
        "    match=nexthop",
        "   # an indented comment is a comment, not a continuation",
        "",
        "\t protocols=>=TLSv1.3",
        "partner.example   none",
        "other.example may # not a comment here",
      ].join("\n"),
    );
    assert.deepEqual(t.entries, [
      { key: "partner.example", value: "secure match=nexthop protocols=>=TLSv1.3", line: 2 },
      { key: "other.example", value: "may # not a comment here", line: 8 },
    ]);
    assert.equal(t.problems.length, 1);
    assert.match(t.problems[0]!.message, /duplicate entry "partner.example" \(first on line 2\)/);
    assert.equal(t.problems[0]!.line, 7);
  });
});

describe("smtp_tls_policy_maps levels", () => {
  const mode = (value: string) => {
    const r = mapLevel(value, { caConfigMapName: "x-ca", domain: "partner.example" });
    return "tls" in r ? r.tls : r;
  };
  it("none, may, encrypt, dane map to none, opportunistic, required, dane", () => {
    assert.deepEqual(mode("none"), { mode: "none" });
    assert.deepEqual(mode("may"), { mode: "opportunistic" });
    assert.deepEqual(mode("encrypt"), { mode: "required" });
    assert.deepEqual(mode("dane"), { mode: "dane" });
  });
  it("verify and secure map to verify against public CAs; secure's nexthop:dot-nexthop is Sealpost's default", () => {
    assert.deepEqual(mode("secure"), { mode: "verify", trustSystemRoots: true });
    assert.deepEqual(mode("secure match=nexthop:dot-nexthop"), { mode: "verify", trustSystemRoots: true });
    assert.deepEqual(mode("secure match=nexthop"), {
      mode: "verify",
      trustSystemRoots: true,
      matchNames: ["partner.example"],
    });
    assert.deepEqual(mode("verify match=mx.hoster.example:.partner.example"), {
      mode: "verify",
      trustSystemRoots: true,
      matchNames: ["mx.hoster.example", "*.partner.example"],
    });
  });
  it("verify's default match=hostname (the MX name from DNS) is not trusted: a note, and the domain is checked", () => {
    const r = mapLevel("verify", { caConfigMapName: "x-ca", domain: "partner.example" });
    assert.ok("tls" in r);
    assert.deepEqual(r.tls, { mode: "verify", trustSystemRoots: true });
    assert.match(r.warnings.join("\n"), /hostname .* not trusted by Sealpost/);
  });
  it("a [host] next hop's nexthop and hostname are the host itself", () => {
    const r = mapLevel("secure match=nexthop:hostname", {
      caConfigMapName: "x",
      nextHopHost: "smtp.p.example",
    });
    assert.ok("tls" in r);
    assert.deepEqual(r.tls.matchNames, ["smtp.p.example"]);
  });
  it("tafile= becomes a caBundle ConfigMap, with the kubectl command that creates it", () => {
    const r = mapLevel("secure tafile=/etc/postfix/ca.pem", { caConfigMapName: "p-ca", domain: "p.example" });
    assert.ok("tls" in r);
    assert.deepEqual(r.tls.caBundle, { configMapRef: { name: "p-ca", key: "ca.crt" } });
    assert.equal(r.tls.trustSystemRoots, undefined);
    assert.match(r.warnings[0]!, /kubectl create configmap p-ca --from-file=ca.crt=\/etc\/postfix\/ca.pem/);
  });
  it("dane-only and fingerprint are refused (Sealpost has nothing as strong), with what to write instead", () => {
    for (const v of ["dane-only", "fingerprint match=3D:95:34", "MUST"]) {
      const r = mapLevel(v, { caConfigMapName: "x" });
      assert.ok("unsupported" in r, v);
      assert.match(r.unsupported, /Write a MailDomainPolicy by hand|fix the line/);
    }
  });
  it("protocols= in each Postfix syntax becomes minVersion; ciphers/exclude are dropped with a note", () => {
    const v = (s: string) => {
      const r = minVersionOf(s);
      return "minVersion" in r ? r.minVersion : r.error;
    };
    assert.equal(v(">=TLSv1.2"), "TLSv1.2");
    assert.equal(v(">=TLSv1.3"), "TLSv1.3");
    assert.equal(v("!SSLv2:!SSLv3:!TLSv1:!TLSv1.1:!TLSv1.2"), "TLSv1.3");
    assert.equal(v("TLSv1.2:TLSv1.3"), "TLSv1.2");
    assert.equal(v("!SSLv2:!SSLv3"), "TLSv1.2");
    assert.match(String(v("!TLSv9")), /unknown protocol/);
    const old = minVersionOf("!SSLv2:!SSLv3");
    assert.ok("warnings" in old && /never uses TLS below TLSv1.2/.test(old.warnings.join()));
    const r = mapLevel("encrypt protocols=>=TLSv1.3 ciphers=medium exclude=3DES", { caConfigMapName: "x" });
    assert.ok("tls" in r);
    assert.deepEqual(r.tls, { mode: "required", minVersion: "TLSv1.3" });
    assert.equal(r.warnings.length, 2);
  });
});

describe("routes, next hops and credentials", () => {
  it("maps the fixture's policy file with transport and sasl_passwd: each line mapped or warned about", () => {
    const r = policies({
      policy: fixture("tls_policy"),
      saslPasswd: fixture("sasl_passwd"),
      transport: fixture("transport"),
      mainCf: fixture("main.cf"),
    });
    // every level of the file, as a recipient domain's own policy
    const modeOf = (d: string) => r.byDomain.get(d)?.outbound.tls.mode;
    assert.equal(modeOf("bank.example"), "verify");
    assert.equal(modeOf("insurer.example"), "verify");
    assert.equal(modeOf("*.gov.example"), "required");
    assert.equal(modeOf("legacy.example"), "required");
    assert.equal(modeOf("partner.example"), "opportunistic");
    assert.equal(modeOf("dane.example"), "dane");
    assert.equal(modeOf("nosslpeer.example"), "none");
    assert.equal(modeOf("subsidiary.example"), "verify");
    assert.equal(r.byDomain.get("*.gov.example")?.outbound.tls.minVersion, "TLSv1.3");
    // refused levels: no policy, a warning on their line
    assert.equal(r.byDomain.has("strict-dane.example"), false);
    assert.equal(r.byDomain.has("pinned.example"), false);
    assert.match(r.warningAt("tls_policy", 15)[0]!.message, /dane-only/);
    assert.match(r.warningAt("tls_policy", 18)[0]!.message, /fingerprint/);
    // transport: [mx.hub.example] for hub.example and its subdomains, TLS from the [mx.hub.example] key
    const hub = r.byDomain.get("hub.example")!;
    assert.deepEqual(hub.outbound.nextHop, { host: "mx.hub.example", port: 25 });
    assert.deepEqual(hub.outbound.tls.matchNames, ["mx.hub.example"]);
    assert.deepEqual(hub.outbound.auth, { credentialRef: { name: "mx-hub-example-login" } });
    assert.deepEqual(r.byDomain.get("*.hub.example")?.outbound.nextHop, hub.outbound.nextHop);
    // a next hop without a policy entry gets main.cf's smtp_tls_security_level (may), with a note
    assert.equal(modeOf("mailing.example"), "opportunistic");
    assert.deepEqual(r.byDomain.get("mailing.example")?.outbound.nextHop, {
      host: "lists.mailing.example",
      port: 2525,
    });
    // what transport cannot express
    for (const line of [6, 7, 8])
      assert.equal(r.warningAt("transport", line)[0]?.skipped, true, `line ${line}`);
    // sasl_passwd: sender-dependent and unrouted entries; the relayhost's entry is unused without relayhost
    assert.match(r.warningAt("sasl_passwd", 6)[0]!.message, /sender-dependent/);
    assert.match(r.warningAt("sasl_passwd", 8)[0]!.message, /no route uses/);
    assert.match(
      r.warningAt("tls_policy", 31)[0]!.message,
      /no route uses next hop \[unused-gateway.example\]:2525/,
    );
    // every manifest is valid for the API's own schema
    for (const m of r.manifests) {
      const schema =
        m.kind === "MailDomainPolicy"
          ? MailDomainPolicySpec
          : m.kind === "RelayCredential"
            ? RelayCredentialSpec
            : undefined;
      if (schema) assert.ok(schema.safeParse(m.spec).success, `${m.kind}/${m.metadata.name}`);
    }
    // every warning names a line and says what to do or what happens instead
    for (const w of r.warnings) assert.ok(w.line !== undefined, w.message);
  });

  it("relayhost: one catch-all policy with the next hop; domain keys are unused, as in Postfix", () => {
    const r = policies({
      policy: fixture("tls_policy"),
      saslPasswd: fixture("sasl_passwd"),
      relayhost: "[smtp.provider.example]:587",
    });
    const all = r.byDomain.get("*")!;
    assert.deepEqual(all.outbound.nextHop, { host: "smtp.provider.example", port: 587 });
    // encrypt + a password: raised to verify, since Sealpost sends passwords to verified peers only
    assert.equal(all.outbound.tls.mode, "verify");
    assert.equal(all.outbound.tls.minVersion, "TLSv1.2");
    assert.match(r.warningAt("sasl_passwd", 2)[0]!.message, /raised from required to verify/);
    assert.equal(r.byDomain.has("bank.example"), false);
    assert.match(
      r.warningAt("tls_policy", 5)[0]!.message,
      /not used by Postfix: mail for bank.example goes to \[smtp.provider.example\]:587/,
    );
    const cred = r.manifests.find((m) => m.kind === "RelayCredential")!;
    assert.deepEqual(cred.spec, {
      type: "password",
      usage: "outbound",
      username: "relay-user@corp.example",
      passwordSecretRef: { name: "smtp-provider-example-587-login-password", key: "password" },
      restrictTo: { nextHops: ["smtp.provider.example"] },
    });
  });

  it('a "*" transport by MX keeps the domain keys in use; "*" in the policy table is no wildcard', () => {
    const r = policies({
      policy: { name: "tls_policy", text: "partner.example encrypt\n* verify\n" },
      transport: { name: "transport", text: "* smtp:\n" },
      mainCf: { name: "main.cf", text: "smtp_tls_security_level = may\n" },
    });
    assert.equal(r.byDomain.get("partner.example")?.outbound.tls.mode, "required");
    assert.equal(r.byDomain.get("*")?.outbound.tls.mode, "opportunistic");
    assert.equal(r.byDomain.get("*")?.outbound.nextHop, undefined);
    assert.match(r.warningAt("tls_policy", 2)[0]!.message, /no wildcard in smtp_tls_policy_maps/);
  });

  it("a password for a route that is not imported is not imported either, and says why", () => {
    const r = policies({
      policy: { name: "tls_policy", text: "[gw.example]:587 dane-only\n" },
      saslPasswd: { name: "sasl_passwd", text: "[gw.example]:587 u:p\n" },
      relayhost: "[gw.example]:587",
    });
    assert.equal(r.manifests.length, 0);
    assert.deepEqual(
      r.warnings.map((w) => `${w.file}:${w.line ?? ""} ${w.skipped}`),
      ["sasl_passwd:1 true", "tls_policy:1 true"],
    );
    assert.match(r.warningAt("sasl_passwd", 1)[0]!.message, /not imported with its route: tls_policy line 1/);
  });

  it("never prints a password unless asked; asked, keeps the colons in it", () => {
    const input = { saslPasswd: fixture("sasl_passwd"), relayhost: "[smtp.provider.example]:587" };
    const { out, err, io } = captured();
    runImport(["postfix", "--sasl-passwd", "sasl_passwd", "--relayhost", input.relayhost], io);
    assert.doesNotMatch(out.join("") + err.join(""), /s3cr3t|hubpass|alicepass|oldpass/);
    const secret = parseAllDocuments(out.join(""))
      .map((d) => d.toJS() as { kind: string; stringData?: { password: string } })
      .find((d) => d.kind === "Secret")!;
    assert.equal(secret.stringData?.password, PASSWORD_PLACEHOLDER);
    const shown = importPostfix({ ...input, includePasswords: true });
    const s = shown.manifests.find((m) => m.kind === "Secret")!;
    assert.deepEqual(s.stringData, { password: "s3cr3t:with:colons" });
  });

  it("the command: YAML on stdout, file:line warnings on stderr, exit 1 when a line was not imported", () => {
    const { out, err, io } = captured();
    assert.equal(runImport(["postfix", "--policy", "tls_policy", "--namespace", "mail"], io), 1);
    const docs = parseAllDocuments(out.join("")).map((d) => d.toJS() as { metadata: { namespace: string } });
    assert.ok(docs.length >= 8);
    assert.ok(docs.every((d) => d.metadata.namespace === "mail"));
    assert.match(err.join(""), /^tls_policy:15: not imported: strict-dane.example: level dane-only/m);
    // a clean file exits 0
    const clean = policyOnly("partner.example encrypt\n");
    assert.equal(clean.warnings.length, 0);
    assert.equal(
      runImport(["postfix", "--policy", "x"], { ...io, read: () => "partner.example encrypt\n" }),
      0,
    );
    // bad usage: one line, exit 2
    const e2: string[] = [];
    assert.equal(runImport(["postfix", "--polcy", "x"], { ...io, err: (s) => e2.push(s) }), 2);
    assert.equal(e2.join("").trim().split("\n").length, 1);
    assert.ok(parse(out.join("").split("---\n")[0]!));
  });
});
