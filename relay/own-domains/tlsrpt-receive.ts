// A TLS-RPT report as a partner sends it about our domains (RFC 8460 section 5): the bytes of an
// application/tlsrpt+gzip or application/tlsrpt+json body, decoded and checked with the one report
// schema (relay/tlsrpt-report.ts). Untrusted input: the compressed size is capped by the caller,
// the decompressed size here (zlib stops at maxOutputLength, so a gzip bomb costs at most that much
// memory), the JSON is parsed only within that bound, and the schema bounds every list and string.
// Pure: no I/O (zlib runs in memory).
import { gunzipSync } from "node:zlib";
import { TlsRptReportSchema, type TlsRptReport } from "../tlsrpt-report.js";

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
