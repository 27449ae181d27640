// examples/ with its placeholders filled: every `REPLACE-ME...` value of a Secret (stringData) or
// ConfigMap (data) is replaced by a demo value generated at run time (never committed). A placeholder
// the demo has no value for is an error, so a new example cannot silently go in with placeholders.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";

export interface Manifest {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  [k: string]: unknown;
}

export const PLACEHOLDER = /^REPLACE-ME/;

/** Reads every *.yaml of a folder, in file name order: [file, documents]. */
export function readExamples(dir: string): { file: string; docs: Manifest[] }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((file) => ({
      file,
      docs: parseAllDocuments(readFileSync(join(dir, file), "utf8"))
        .map((d) => d.toJS() as Manifest | null)
        .filter((d): d is Manifest => !!d),
    }));
}

/** The placeholders in these manifests, as "Kind/name/key". Pure. */
export function placeholders(docs: Manifest[]): string[] {
  const out: string[] = [];
  for (const d of docs) {
    const values = d.kind === "Secret" ? d.stringData : d.kind === "ConfigMap" ? d.data : undefined;
    for (const [k, v] of Object.entries(values ?? {}))
      if (PLACEHOLDER.test(v)) out.push(`${d.kind}/${d.metadata?.name}/${k}`);
  }
  return out;
}

/** Copies of `docs` with each placeholder replaced by values["Kind/name/key"]. Pure. */
export function fillPlaceholders(docs: Manifest[], values: Record<string, string>): Manifest[] {
  const missing = placeholders(docs).filter((p) => values[p] === undefined);
  if (missing.length) throw new Error(`no demo value for the placeholders ${missing.join(", ")}`);
  return docs.map((d) => {
    const field = d.kind === "Secret" ? "stringData" : d.kind === "ConfigMap" ? "data" : undefined;
    if (!field || !d[field]) return d;
    const filled = Object.fromEntries(
      Object.entries(d[field]).map(([k, v]) => [
        k,
        PLACEHOLDER.test(v) ? values[`${d.kind}/${d.metadata?.name}/${k}`]! : v,
      ]),
    );
    return { ...d, [field]: filled };
  });
}

export function toYaml(docs: Manifest[]): string {
  return docs.map((d) => stringify(d)).join("---\n");
}
