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
    // verify/secure trust main.cf's smtp_tls_CAfile only, as Postfix does: never all public CAs
    assert.deepEqual(r.byDomain.get("bank.example")?.outbound.tls.caBundle, {
      configMapRef: { name: "postfix-smtp-tls-ca", key: "ca.crt" },
    });
    assert.equal(r.byDomain.get("bank.example")?.outbound.tls.trustSystemRoots, undefined);
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

// The attacker's review of issue 17: main.cf settings the importer ignored made its policies weaker
// than the Postfix they replace. Each case is a main.cf an administrator really has.
describe("main.cf's TLS defaults: never weaker than Postfix", () => {
  const mainCf = (text: string, extra: Omit<ImportInput, "mainCf"> = {}) =>
    policies({ mainCf: { name: "main.cf", text }, ...extra });
  const CA = "smtp_tls_CAfile = /etc/postfix/ca.pem\n";
  const caBundle = { configMapRef: { name: "postfix-smtp-tls-ca", key: "ca.crt" } };

  it("smtp_enforce_tls = yes alone: the catch-all is verify against main.cf's CA, not Sealpost's opportunistic default", () => {
    const r = mainCf(`smtp_enforce_tls = yes\n${CA}`);
    assert.deepEqual(r.byDomain.get("*")?.outbound.tls, { mode: "verify", caBundle });
    assert.ok(r.warnings.every((w) => !w.skipped));
  });
  it("smtp_enforce_tls = yes with smtp_tls_enforce_peername = no: required", () => {
    const r = mainCf("smtp_enforce_tls = yes\nsmtp_tls_enforce_peername = no\n");
    assert.deepEqual(r.byDomain.get("*")?.outbound.tls, { mode: "required" });
  });
  it("smtp_use_tls = yes is may: Sealpost's own default, no catch-all needed", () => {
    const r = mainCf("smtp_use_tls = yes\n");
    assert.equal(r.byDomain.has("*"), false);
    // a next hop without a policy entry gets may from the legacy parameter, and the note says why
    const t = mainCf("smtp_use_tls = yes\nrelayhost = [smtp.p.example]\n");
    assert.equal(t.byDomain.get("*")?.outbound.tls.mode, "opportunistic");
    assert.match(t.warnings.map((w) => w.message).join("\n"), /default level may \(smtp_use_tls = yes\)/);
  });
  it("a non-empty smtp_tls_security_level wins over the legacy parameters, with a note on each", () => {
    const r = mainCf("smtp_enforce_tls = yes\nsmtp_tls_security_level = encrypt\n");
    assert.deepEqual(r.byDomain.get("*")?.outbound.tls, { mode: "required" });
    assert.match(r.warningAt("main.cf", 1)[0]!.message, /smtp_enforce_tls is not used/);
    // empty is not set: the legacy one applies
    const e = mainCf(`smtp_tls_security_level =\nsmtp_enforce_tls = yes\n${CA}`);
    assert.equal(e.byDomain.get("*")?.outbound.tls.mode, "verify");
  });
  it("a boolean Postfix would refuse is read as the stricter value, with a warning", () => {
    const r = mainCf(`smtp_enforce_tls = ture\n${CA}`);
    assert.equal(r.byDomain.get("*")?.outbound.tls.mode, "verify");
    assert.match(r.warningAt("main.cf", 1)[0]!.message, /not yes or no/);
  });
  it("verify without smtp_tls_CAfile/CApath: Postfix trusts no CA, so nothing is imported (exit 1)", () => {
    const r = mainCf("smtp_enforce_tls = yes\n");
    assert.equal(r.byDomain.has("*"), false);
    assert.ok(r.warnings.some((w) => w.skipped && /Postfix trusts no CA/.test(w.message)));
    const p = mainCf("smtp_tls_security_level = may\n", {
      policy: { name: "tls_policy", text: "bank.example secure\n" },
    });
    assert.equal(p.byDomain.has("bank.example"), false);
    assert.equal(p.warningAt("tls_policy", 1)[0]?.skipped, true);
  });
  it("smtp_tls_CAfile and CApath become one caBundle ConfigMap, with the command; append_default adds the public CAs", () => {
    const r = mainCf(`smtp_tls_CAfile = /etc/postfix/ca.pem\nsmtp_tls_CApath = /etc/postfix/certs\n`, {
      policy: { name: "tls_policy", text: "bank.example secure\n[gw.example]:587 verify\n" },
      relayhost: "[gw.example]:587",
    });
    assert.deepEqual(r.byDomain.get("*")?.outbound.tls, {
      mode: "verify",
      caBundle,
      matchNames: ["gw.example"],
    });
    assert.match(
      r.warningAt("main.cf", 1)[0]!.message,
      /cat \/etc\/postfix\/ca.pem \/etc\/postfix\/certs\/\*.pem > ca.crt && kubectl create configmap postfix-smtp-tls-ca/,
    );
    const a = mainCf(`${CA}tls_append_default_CA = yes\n`, {
      policy: { name: "tls_policy", text: "bank.example secure\n" },
    });
    assert.deepEqual(a.byDomain.get("bank.example")?.outbound.tls, {
      mode: "verify",
      caBundle,
      trustSystemRoots: true,
    });
    // smtp_tls_trust_anchor_file replaces CAfile/CApath: only the anchors are trusted
    const ta = mainCf(`${CA}smtp_tls_trust_anchor_file = /etc/postfix/ta.pem\n`, {
      policy: { name: "tls_policy", text: "bank.example secure\n" },
    });
    assert.deepEqual(ta.byDomain.get("bank.example")?.outbound.tls, { mode: "verify", caBundle });
    assert.match(
      ta
        .warningAt("main.cf", 2)
        .map((w) => w.message)
        .join("\n"),
      /replaces smtp_tls_CAfile.*\n.*cat \/etc\/postfix\/ta.pem > ca.crt/,
    );
    // tafile= replaces main.cf's CAs for its entry, as in Postfix
    const t = mainCf(CA, { policy: { name: "tls_policy", text: "bank.example secure tafile=/b.pem\n" } });
    assert.deepEqual(t.byDomain.get("bank.example")?.outbound.tls.caBundle, {
      configMapRef: { name: "bank-example-ca", key: "ca.crt" },
    });
  });
  it("without main.cf the CA is unknown: public CAs assumed, and each verify line says so", () => {
    const r = policyOnly("bank.example secure\n");
    assert.equal(r.byDomain.get("bank.example")?.outbound.tls.trustSystemRoots, true);
    assert.match(r.warningAt("tls_policy", 1)[0]!.message, /unknown without main.cf/);
  });
  it("smtp_tls_secure_cert_match / smtp_tls_verify_cert_match replace the built-in match defaults", () => {
    const r = mainCf(`${CA}smtp_tls_secure_cert_match = nexthop\nsmtp_tls_verify_cert_match = nexthop\n`, {
      policy: {
        name: "tls_policy",
        text: "bank.example secure\ninsurer.example verify\nother.example secure match=nexthop:dot-nexthop\n",
      },
    });
    // nexthop alone: the domain itself, not its subdomains (Sealpost's default would accept those)
    assert.deepEqual(r.byDomain.get("bank.example")?.outbound.tls.matchNames, ["bank.example"]);
    assert.deepEqual(r.byDomain.get("insurer.example")?.outbound.tls.matchNames, ["insurer.example"]);
    // an entry's own match= wins over the global
    assert.equal(r.byDomain.get("other.example")?.outbound.tls.matchNames, undefined);
    // a subdomain key cannot say "exactly the recipient domain": a warning on its line
    const s = mainCf(`${CA}smtp_tls_secure_cert_match = nexthop\n`, {
      policy: { name: "tls_policy", text: ".bank.example secure\n" },
    });
    assert.match(s.warningAt("tls_policy", 1)[0]!.message, /nexthop without dot-nexthop/);
  });
  it("smtp_tls_mandatory_protocols raises minVersion of the mandatory levels; unknown TLS parameters are named", () => {
    const r = policies({
      mainCf: fixture("main-legacy.cf"),
      policy: { name: "tls_policy", text: "partner.example may\nlegacy.example encrypt\n" },
    });
    assert.deepEqual(r.byDomain.get("*")?.outbound.tls, {
      mode: "verify",
      minVersion: "TLSv1.3",
      caBundle,
    });
    assert.equal(r.byDomain.get("legacy.example")?.outbound.tls.minVersion, "TLSv1.3");
    assert.equal(r.byDomain.get("partner.example")?.outbound.tls.minVersion, undefined);
    const notes = r.warnings.filter((w) => w.file === "main-legacy.cf").map((w) => w.message);
    for (const p of ["smtp_tls_mandatory_ciphers", "smtp_tls_cert_file", "smtp_tls_key_file"])
      assert.ok(
        notes.some((n) => n.startsWith(`${p} is not imported`)),
        p,
      );
    assert.ok(!notes.some((n) => n.startsWith("smtp_tls_loglevel")));
  });
  it("smtp_tls_per_site or an unread smtp_tls_policy_maps is an error, not a silently weaker import", () => {
    const r = mainCf("smtp_tls_per_site = hash:/etc/postfix/tls_per_site\n");
    assert.equal(r.warningAt("main.cf", 1)[0]?.skipped, true);
    const p = mainCf("smtp_tls_policy_maps = hash:/etc/postfix/tls_policy\n");
    assert.equal(p.warningAt("main.cf", 1)[0]?.skipped, true);
    assert.match(p.warningAt("main.cf", 1)[0]!.message, /--policy/);
  });
});
