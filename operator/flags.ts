// The operator's command-line values (operator/main.ts), parsed. Pure.

/** A duration flag in seconds ("30" or "30s"), in milliseconds; `dflt` is in seconds too. */
export function seconds(v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt * 1000;
  const n = Number(v.replace(/s$/, ""));
  if (!Number.isFinite(n) || n <= 0) throw new Error(`invalid duration ${v}`);
  return n * 1000;
}

/** A count flag (a positive integer). */
export function count(v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`invalid count ${v}`);
  return n;
}

/** "k=v,k2=v2" as a label map. */
export function labels(v: string): Record<string, string> {
  return Object.fromEntries(
    v
      .split(",")
      .filter(Boolean)
      .map((kv) => {
        const [k, val = ""] = kv.split("=");
        return [k!.trim(), val.trim()];
      }),
  );
}
