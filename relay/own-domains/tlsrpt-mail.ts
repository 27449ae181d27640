// The report inside a TLS-RPT mail (RFC 8460 section 5.3: multipart/report; report-type="tlsrpt"
// with an application/tlsrpt+gzip or +json part, usually base64). Written by hand because the relay
// carries no MIME parser (nodemailer writes MIME, smtp-server does not read it) and only this walk
// is needed: headers, Content-Type with its boundary, Content-Transfer-Encoding; nesting and part
// counts bounded, so a message built to be expensive stops early. The first report part found is
// taken; a message without one is not a report. Pure.
import type { ReportEncoding } from "./tlsrpt-receive.js";
import { reportEncodingOf } from "./tlsrpt-receive.js";

const MAX_DEPTH = 4;
const MAX_PARTS = 64;

interface Entity {
  headers: Map<string, string>;
  body: Buffer;
}

function splitEntity(raw: Buffer): Entity {
  const text = raw.toString("latin1");
  const m = /\r?\n\r?\n/.exec(text);
  const head = m ? text.slice(0, m.index) : text;
  const body = m ? raw.subarray(m.index + m[0].length) : Buffer.alloc(0);
  const headers = new Map<string, string>();
  for (const field of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const i = field.indexOf(":");
    if (i <= 0) continue;
    const name = field.slice(0, i).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, field.slice(i + 1).trim());
  }
  return { headers, body };
}

/** A Content-Type parameter (quoted or not). */
function param(value: string, name: string): string | undefined {
  const re = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, "i");
  const m = re.exec(value);
  return m ? (m[1] ?? m[2]) : undefined;
}

function decodeBody(e: Entity): Buffer {
  const cte = (e.headers.get("content-transfer-encoding") ?? "7bit").toLowerCase();
  if (cte === "base64")
    return Buffer.from(e.body.toString("latin1").replace(/[^A-Za-z0-9+/=]/g, ""), "base64");
  if (cte === "quoted-printable")
    return Buffer.from(
      e.body
        .toString("latin1")
        .replace(/=\r?\n/g, "")
        .replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
      "latin1",
    );
  return e.body;
}

/** The parts of a multipart body between its boundary lines (preamble and epilogue dropped). */
function parts(body: Buffer, boundary: string): Buffer[] {
  const text = body.toString("latin1");
  const delimiter = `--${boundary}`;
  const out: Buffer[] = [];
  let pos = text.startsWith(delimiter) ? 0 : text.indexOf(`\n${delimiter}`);
  while (pos >= 0 && out.length < MAX_PARTS) {
    const lineEnd = text.indexOf("\n", pos + 1 + delimiter.length);
    if (lineEnd < 0) break;
    const afterDelim = text.slice(pos + (text[pos] === "\n" ? 1 : 0) + delimiter.length, lineEnd);
    if (afterDelim.startsWith("--")) break; // the close delimiter
    const next = text.indexOf(`\n${delimiter}`, lineEnd);
    if (next < 0) break;
    const end = next > 0 && text[next - 1] === "\r" ? next - 1 : next;
    out.push(body.subarray(lineEnd + 1, end));
    pos = next;
  }
  return out;
}

function find(raw: Buffer, depth: number): { encoding: ReportEncoding; data: Buffer } | undefined {
  const e = splitEntity(raw);
  const type = e.headers.get("content-type") ?? "text/plain";
  const encoding = reportEncodingOf(type);
  if (encoding) return { encoding, data: decodeBody(e) };
  if (!/^\s*multipart\//i.test(type) || depth >= MAX_DEPTH) return undefined;
  const boundary = param(type, "boundary");
  if (!boundary || boundary.length > 200) return undefined;
  for (const p of parts(e.body, boundary)) {
    const found = find(p, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** The first TLS-RPT report part of a message (headers and body as received). Pure. */
export function reportOfMessage(message: Buffer): { encoding: ReportEncoding; data: Buffer } | undefined {
  return find(message, 0);
}
