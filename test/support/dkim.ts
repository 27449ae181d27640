// DKIM for the tests: a signing key generated at test time with the openssl CLI, and dkimpy (Debian's
// python3-dkim, scripts/setup.sh) as the independent verifier. Its DNS lookup is a function that
// answers from the test's own records, so verification needs no DNS server and never leaves the
// machine.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface DkimKey {
  keyFile: string;
  /** The TXT record for <selector>._domainkey.<domain>. */
  txt: string;
}

export async function makeDkimKey(dir: string, name: string, bits = 2048): Promise<DkimKey> {
  const keyFile = join(dir, `${name}.dkim.pem`);
  await run("openssl", [
    "genpkey",
    "-algorithm",
    "RSA",
    "-pkeyopt",
    `rsa_keygen_bits:${bits}`,
    "-out",
    keyFile,
  ]);
  const der = await run("openssl", ["pkey", "-in", keyFile, "-pubout", "-outform", "DER"], {
    encoding: "buffer",
  });
  return { keyFile, txt: `v=DKIM1; k=rsa; p=${der.stdout.toString("base64")}` };
}

export interface DkimVerdict {
  ok: boolean;
  /** dkimpy's reason when it refused the signature, e.g. "body hash mismatch ...". */
  why: string;
  domain: string;
  selector: string;
  /** The header field names the signature covers (h=), lower case. */
  signed: string[];
}

const VERIFY = `
import sys, json, dkim
records = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    r = records.get(n.rstrip('.'))
    return r.encode() if r is not None else None
d = dkim.DKIM(sys.stdin.buffer.read())
try:
    ok, why = bool(d.verify(dnsfunc=dnsfunc)), ""
except dkim.ValidationError as e:  # e.g. "body hash mismatch": a failed verification
    ok, why = False, str(e)
print(json.dumps({"ok": ok, "why": why, "domain": (d.domain or b"").decode(),
  "selector": (d.selector or b"").decode(), "signed": [h.decode() for h, _ in (d.signed_headers or [])]}))
`;

/**
 * dkimpy's verdict on a message as stored (a Maildir file, LF line ends: CRLF restored, as a verifier
 * on a Unix mailbox does), its first signature, the public keys from `records` (name -> TXT).
 */
export async function dkimVerify(message: Buffer, records: Record<string, string>): Promise<DkimVerdict> {
  const crlf = Buffer.from(message.toString("latin1").replace(/\r?\n/g, "\r\n"), "latin1");
  // /usr/bin/python3: Debian's python3-dkim is installed for the system interpreter
  const child = execFile("/usr/bin/python3", ["-c", VERIFY, JSON.stringify(records)], {
    encoding: "utf8",
  });
  const out = new Promise<string>((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: string) => (stdout += d));
    child.stderr!.on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`dkimpy: ${stderr}`))));
  });
  child.stdin!.end(crlf);
  return JSON.parse(await out) as DkimVerdict;
}

/** A stored message's bytes (Message.path of test/support/mailbox.ts). */
export const rawBytes = (path: string): Promise<Buffer> => readFile(path);
