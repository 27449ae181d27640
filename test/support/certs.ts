// Test certificates, generated at test time with the openssl CLI (never committed): a CA, and leaf
// certificates it signs for servers and clients. EC P-256 keys keep generation fast.
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface Ca {
  name: string;
  certFile: string;
  keyFile: string;
  dir: string;
}

export interface Leaf {
  certFile: string;
  keyFile: string;
  /** The CA that signed it. */
  caFile: string;
}

export interface LeafOptions {
  cn: string;
  /** Subject O=, e.g. system:masters for a Kubernetes admin client certificate. */
  organization?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  emails?: string[];
  /** Client certificate (clientAuth) rather than a server one (serverAuth). */
  client?: boolean;
  days?: number;
  /** Already expired (not valid after yesterday): for negative tests. */
  expired?: boolean;
  /** RSA instead of EC (S/MIME key transport needs RSA). */
  rsa?: boolean;
  /** With rsa: the key's size (default 2048; smaller ones for negative tests). */
  rsaBits?: number;
  /** File name prefix; default: cn with unsafe characters replaced. */
  name?: string;
}

async function openssl(args: string[]): Promise<void> {
  await run("openssl", args);
}

async function newKey(file: string, rsa = false, rsaBits = 2048): Promise<void> {
  await openssl(
    rsa
      ? ["genpkey", "-algorithm", "RSA", "-pkeyopt", `rsa_keygen_bits:${rsaBits}`, "-out", file]
      : ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", file],
  );
}

export async function makeCa(dir: string, cn = "Sealpost Test CA"): Promise<Ca> {
  await mkdir(dir, { recursive: true });
  const name = safe(cn);
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  await newKey(keyFile);
  await openssl([
    "req", "-x509", "-new", "-key", keyFile, "-out", certFile, "-days", "30", "-subj", `/CN=${cn}`,
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]); // prettier-ignore
  return { name, certFile, keyFile, dir };
}

export async function makeLeaf(ca: Ca, o: LeafOptions): Promise<Leaf> {
  const name = o.name ?? safe(o.cn);
  const keyFile = join(ca.dir, `${name}.key`);
  const certFile = join(ca.dir, `${name}.crt`);
  const csrFile = join(ca.dir, `${name}.csr`);
  const extFile = join(ca.dir, `${name}.ext`);
  await newKey(keyFile, o.rsa, o.rsaBits);
  await openssl(["req", "-new", "-key", keyFile, "-out", csrFile, "-subj", subject(o)]);
  const san = [
    ...(o.dnsNames ?? []).map((d) => `DNS:${d}`),
    ...(o.ipAddresses ?? []).map((ip) => `IP:${ip}`),
    ...(o.emails ?? []).map((e) => `email:${e}`),
  ];
  const usage = o.emails?.length
    ? "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection"
    : `keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=${o.client ? "clientAuth" : "serverAuth"}`;
  await writeFile(
    extFile,
    ["basicConstraints=CA:FALSE", usage, san.length ? `subjectAltName=${san.join(",")}` : ""].join("\n"),
  );
  if (o.expired) await signExpired(ca, csrFile, extFile, certFile);
  else
    await openssl([
      "x509", "-req", "-in", csrFile, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-CAcreateserial",
      "-out", certFile, "-extfile", extFile, "-days", String(o.days ?? 30),
    ]); // prettier-ignore
  return { certFile, keyFile, caFile: ca.certFile };
}

// `openssl x509` of OpenSSL 3.0 cannot set a past validity window; `openssl ca` can, given a database.
async function signExpired(ca: Ca, csrFile: string, extFile: string, certFile: string): Promise<void> {
  const db = join(ca.dir, "ca-db");
  await mkdir(db, { recursive: true });
  await writeFile(join(db, "index.txt"), "");
  await writeFile(join(db, "serial"), "1000\n");
  const conf = join(db, "ca.cnf");
  await writeFile(
    conf,
    [
      "[ca]", "default_ca = d", "[d]", `database = ${db}/index.txt`, `serial = ${db}/serial`,
      `new_certs_dir = ${db}`, "default_md = sha256", "policy = p", "unique_subject = no",
      "[p]", "commonName = supplied",
    ].join("\n"), // prettier-ignore
  );
  await openssl([
    "ca", "-batch", "-config", conf, "-in", csrFile, "-out", certFile, "-cert", ca.certFile,
    "-keyfile", ca.keyFile, "-extfile", extFile, "-notext",
    "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
  ]); // prettier-ignore
}

function subject(o: LeafOptions): string {
  return (o.organization ? `/O=${o.organization}` : "") + `/CN=${o.cn}`;
}

function safe(s: string): string {
  return s.replace(/[^A-Za-z0-9.-]+/g, "_");
}
