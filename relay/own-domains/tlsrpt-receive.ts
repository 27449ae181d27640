// A TLS-RPT report as a partner sends it about our domains (RFC 8460 section 5): the bytes of an
// application/tlsrpt+gzip or application/tlsrpt+json body, decoded and checked with the one report
// schema (relay/tlsrpt-report.ts). Untrusted input: the compressed size is capped by the caller,
// the decompressed size here (zlib stops at maxOutputLength, so a gzip bomb costs at most that much
// memory), the JSON is parsed only within that bound and only once a linear scan of its bytes found
// it no deeper and with no more values than a report can be (jsonShapeProblem: attack review, session
// 6: 16 MB of nested brackets, 15 KB gzipped, became 760 MiB of objects in JSON.parse and ended the
// process), and the schema bounds every list and string. Pure: no I/O (zlib runs in memory).
import { gunzipSync } from "node:zlib";
import {
  MAX_FAILURE_DETAILS,
  MAX_REPORT_POLICIES,
  TlsRptReportSchema,
  type TlsRptReport,
} from "../tlsrpt-report.js";

export type ReportEncoding = "gzip" | "json";

/** Why a received report was refused (a closed list: the metric's and /status's `refused` keys). */
export type RefusalReason = "too-large" | "malformed" | "not-ours" | "not-a-report";

export type Decoded =
  { ok: true; report: TlsRptReport } | { ok: false; reason: RefusalReason; detail: string };

/** The encoding of a media type (parameters ignored); undefined: not a TLS-RPT media type. */
export function reportEncodingOf(contentType: string | undefined): ReportEncoding | undefined {
  const t = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return t === "application/tlsrpt+gzip" ? "gzip" : t === "application/tlsrpt+json" ? "json" : undefined;
}

/**
 * The most a report's JSON may hold before it is parsed: the schema's report is 5 levels deep, and at
 * its largest (MAX_REPORT_POLICIES policies of MAX_FAILURE_DETAILS details, and their lists of
 * strings) about 100,500 objects and arrays and a million values; room above both for fields the
 * schema ignores, not for millions.
 */
export const JSON_LIMITS = {
  depth: 16,
  containers: 2 * MAX_REPORT_POLICIES * (MAX_FAILURE_DETAILS + 100),
  values: 20 * MAX_REPORT_POLICIES * (MAX_FAILURE_DETAILS + 100),
} as const;

/**
 * Why `json` is deeper or holds more objects, arrays or values than `limits`, in one pass over its
 * bytes (strings, with their escapes, skipped); undefined when within them. Whether it is JSON at
 * all is JSON.parse's to say. Pure.
 */
export function jsonShapeProblem(
  json: Uint8Array,
  limits: { depth: number; containers: number; values: number } = JSON_LIMITS,
): string | undefined {
  let depth = 0;
  let containers = 0;
  let values = 1;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const b = json[i]!;
    if (inString) {
      if (b === 0x5c)
        i++; // backslash: the next byte is escaped
      else if (b === 0x22) inString = false;
      continue;
    }
    if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (++depth > limits.depth) return `nested deeper than ${limits.depth}`;
      if (++containers > limits.containers) return `more than ${limits.containers} objects and arrays`;
    } else if (b === 0x7d || b === 0x5d) depth--;
    else if (b === 0x2c && ++values > limits.values) return `more than ${limits.values} values`;
  }
  return undefined;
}

/** Decodes and validates one report body. Pure. */
export function decodeReport(
  body: Buffer,
  encoding: ReportEncoding,
  limits: { maxReportBytes: number; maxDecompressedBytes: number },
): Decoded {
  if (body.length > limits.maxReportBytes)
    return { ok: false, reason: "too-large", detail: `report of ${body.length} bytes` };
  let json: Buffer;
  if (encoding === "gzip") {
    try {
      json = gunzipSync(body, { maxOutputLength: limits.maxDecompressedBytes });
    } catch (e) {
      const code = (e as { code?: string }).code;
      return code === "ERR_BUFFER_TOO_LARGE"
        ? {
            ok: false,
            reason: "too-large",
            detail: `decompressed report larger than ${limits.maxDecompressedBytes} bytes`,
          }
        : { ok: false, reason: "malformed", detail: "not gzip data" };
    }
  } else json = body;
  if (json.length > limits.maxDecompressedBytes)
    return {
      ok: false,
      reason: "too-large",
      detail: `report larger than ${limits.maxDecompressedBytes} bytes`,
    };
  const shape = jsonShapeProblem(json);
  if (shape) return { ok: false, reason: "too-large", detail: `report JSON ${shape}` };
  let value: unknown;
  try {
    value = JSON.parse(json.toString("utf8"));
  } catch {
    return { ok: false, reason: "malformed", detail: "not JSON" };
  }
  const r = TlsRptReportSchema.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0];
    return {
      ok: false,
      reason: "malformed",
      detail: `${i?.path.join(".") ?? ""}: ${i?.message ?? "invalid"}`,
    };
  }
  return { ok: true, report: r.data };
}
