// The pre-flight check's report as text for a terminal, pure. The JSON form is the report itself
// (relay/contract/check.ts); this only lays it out. Every string in the report was made printable
// when it was gathered (run.ts).
import { CHECK_MODES, type CheckReport, type HostCheck } from "../contract/check.js";

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd(),
  );
}

const yn = (b: boolean | undefined): string => (b === undefined ? "-" : b ? "yes" : "no");

function dane(h: HostCheck): string {
  if (h.tlsa.status === "dane") return h.tlsa.matches ? "match" : "MISMATCH";
  return h.tlsa.status === "encrypt" ? "unusable" : h.tlsa.status;
}

/** The report as lines of text. */
export function checkText(r: CheckReport): string {
  const out: string[] = [`check of ${r.domain} at ${r.checkedAt}`];
  out.push(
    `MX (DNSSEC ${r.mx.dnssec}): ${r.mx.hosts.map((h) => `${h.priority} ${h.name}`).join(", ") || "(none: the domain itself)"}`,
  );
  if (r.mx.error) out.push(`  ${r.mx.error}`);
  const s = r.mtaSts;
  out.push(
    `MTA-STS: ${
      s.id
        ? `id ${s.id}${s.mode ? `, mode ${s.mode}, mx ${(s.mx ?? []).join(" ")}, max_age ${s.maxAge ?? "?"}` : ""}`
        : "no policy published"
    }${s.failure ? ` (${s.failure.type}: ${s.failure.reason})` : ""}`,
  );
  out.push("");
  if (r.hosts.length) {
    out.push(
      ...table([
        ["MX", "ADDRESS", "STARTTLS", "TLS1.2", "TLS1.3", "CIPHER", "VERIFIES", "NAME", "DANE", "MTA-STS"],
        ...r.hosts.map((h) => [
          h.name,
          `${h.address}:${h.port}`,
          h.error ? "error" : yn(h.starttls),
          yn(h.versions["TLSv1.2"]),
          yn(h.versions["TLSv1.3"]),
          h.tls?.cipher ?? "-",
          yn(h.tls ? h.verifies : undefined),
          yn(h.tls ? h.nameMatches : undefined),
          dane(h),
          yn(h.mtaStsMatch),
        ]),
      ]),
    );
    for (const h of r.hosts) {
      out.push("", `${h.name} [${h.address}]:${h.port}`);
      if (h.error) out.push(`  error: ${h.error}`);
      if (h.verifyError) out.push(`  verify: ${h.verifyError}`);
      if (h.names.length) out.push(`  names verify requires: ${h.names.join(", ")}`);
      for (const [i, c] of h.chain.entries())
        out.push(
          `  cert ${i}: ${c.subject} | issuer ${c.issuer} | notAfter ${c.notAfter}`,
          `          SANs ${c.sans.join(", ") || "-"} | pin-sha256 ${c.pin}`,
        );
      if (h.tlsa.records.length || h.tlsa.reason)
        out.push(`  TLSA: ${h.tlsa.records.join(" / ") || "-"}${h.tlsa.reason ? ` (${h.tlsa.reason})` : ""}`);
      for (const m of CHECK_MODES) {
        const v = h.modes[m];
        out.push(
          `  ${m.padEnd(13)} ${v.ok ? (v.fallback ? `delivers, falls back to ${v.level}` : `ok (${v.level})`) : `defers ${v.code}: ${v.reason ?? ""}`}`,
        );
      }
    }
    out.push("");
  }
  out.push(`strictest mode that would succeed today: ${r.strictest ?? "(unknown)"}`, `  ${r.why}`);
  if (r.minVersion) out.push(`minimum TLS version every MX accepts: ${r.minVersion}`);
  if (r.pins?.length) out.push(`pinned (or pins on top) would pass with: ${r.pins.join(", ")}`);
  return out.join("\n") + "\n";
}
