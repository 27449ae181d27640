// Attack (out-of-the-box review): the examples' placeholder password logs strangers in.
// examples/00-mailrelay.yaml gives the relay-wide account `scanner` (RelayCredential
// scanner-submission, allowRelay: true) the password "REPLACE-ME-scanner-password", published in
// this repository, and exposes port 587 through a LoadBalancer. examples/README.md promises that a
// forgotten placeholder "shows up as deferred mail and a False condition on the policy", and the
// kustomize overlay (deploy/kustomize/overlays/examples) applies the copies as they are. But the relay
// takes any one-line password (relay/config/load.ts passwordProblem refuses only empty, multi-line,
// oversized and non-UTF-8 ones): anyone on the Internet who read the examples runs STARTTLS, AUTH
// PLAIN scanner / REPLACE-ME-scanner-password, and relays to any domain, with a MAIL FROM in
// example.com, DKIM-signed with example.com's key (a relay-wide account's mail is "one of yours").
// The same holds for the partners' inbound placeholders (02, 03), from the partners' ranges.
// Promise broken: no open relay; fails closed (a placeholder must never be a working password).
// Fails today: passwordProblem finds nothing wrong with the placeholders, so loadConfig leaves them
// out of unusableCredentials and the account logs in (key-material.ts accountsOf).
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-assignment -- walks parsed manifests */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { passwordProblem } from "../../relay/config/load.js";
import { repoRoot } from "../support/toolchain.js";

const docsIn = (dir: string): { file: string; obj: any }[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(dir, file), "utf8"))
        .map((d) => d.toJS())
        .filter((obj) => obj?.kind)
        .map((obj) => ({ file, obj })),
    );

/** Each password RelayCredential of `dir` with the value its Secret holds as shipped. */
function passwords(
  dir: string,
): { file: string; name: string; usage: string; allowRelay: boolean; value: string }[] {
  const docs = docsIn(dir);
  const secret = (name: string) =>
    docs.find((d) => d.obj.kind === "Secret" && d.obj.metadata.name === name)?.obj;
  return docs
    .filter((d) => d.obj.kind === "RelayCredential" && d.obj.spec.type === "password")
    .map(({ file, obj }) => {
      const ref = obj.spec.passwordSecretRef;
      const s = secret(ref.name);
      assert.ok(s, `${file}: the Secret ${ref.name} ships with the example`);
      return {
        file,
        name: obj.metadata.name,
        usage: obj.spec.usage,
        allowRelay: obj.spec.allowRelay === true,
        value: String(s.stringData[ref.key ?? "password"]),
      };
    });
}

const shipped = [
  ...passwords(join(repoRoot, "examples")),
  ...passwords(join(repoRoot, "deploy/kustomize/overlays/examples/mail")),
];

describe("attack: the examples' placeholder password is a working login", () => {
  it("the examples ship a relay-wide account that may relay anywhere, on a LoadBalancer's port 587", () => {
    const scanner = shipped.filter((p) => p.name === "scanner-submission");
    assert.equal(scanner.length, 2, "examples/ and the kustomize overlay");
    for (const p of scanner) {
      assert.equal(p.usage, "inbound");
      assert.equal(p.allowRelay, true);
      assert.match(p.value, /^REPLACE-ME/);
    }
    const relay = docsIn(join(repoRoot, "examples")).find((d) => d.obj.kind === "MailRelay")!.obj;
    assert.equal(relay.spec.service.type, "LoadBalancer");
    assert.ok(relay.spec.listeners.submission.port, "587 is open");
  });

  it("every shipped placeholder password is refused at load (unusable: logs nobody in, defers its mail)", () => {
    assert.ok(shipped.some((p) => p.usage === "inbound"));
    for (const p of shipped)
      assert.ok(
        passwordProblem(p.value),
        `${p.file}: RelayCredential ${p.name} (${p.usage}) works with the published password ${p.value}`,
      );
  });

  it("a real password is still usable", () => {
    assert.equal(passwordProblem("h7Vq2mX9pL4rT8wZ1nB6yC3k"), undefined);
    assert.equal(passwordProblem("replace me later, says the team"), undefined);
  });
});
