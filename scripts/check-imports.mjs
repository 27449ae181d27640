#!/usr/bin/env node
// Checks the TypeScript import graph of the project (`npm run lint` runs it):
//   1. no import cycles, type-only imports included (a cycle of types is still two rooms that need
//      each other; at run time a value cycle can also see a module half-initialised);
//   2. operator/ imports nothing from relay/ but relay/contract/, and relay/contract/ imports nothing
//      of the project outside itself: the contract is the one thing the two programs share.
// Written by hand (about 100 lines) rather than adding a dependency (madge, dependency-cruiser): the
// project's imports are all static relative specifiers ending in .js, which a regex reads exactly.
// `node scripts/check-imports.mjs` prints every cycle and every forbidden import, and exits 1 on any.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const ROOTS = ["api", "bin", "operator", "relay", "scripts", "test", "bench", "demo"];

function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" ? [] : walk(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
  });
}

// import ... from "x"; export ... from "x"; import "x"; import("x") with a literal
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']+)["']/g;

/** The project files a file imports (relative specifiers only), as paths relative to the root. */
function importsOf(file) {
  const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|(^|[^:"'`])\/\/.*$/gm, "$1");
  const out = new Set();
  for (const m of text.matchAll(SPECIFIER)) {
    const target = resolve(dirname(file), m[1].replace(/\.js$/, ".ts"));
    out.add(relative(root, target));
  }
  return [...out];
}

const files = ROOTS.flatMap((r) => walk(join(root, r))).map((f) => relative(root, f));
const project = new Set(files);
const graph = new Map(files.map((f) => [f, importsOf(join(root, f)).filter((t) => project.has(t))]));

const problems = [];

// 2. the contract boundary
for (const [from, targets] of graph)
  for (const to of targets) {
    if (from.startsWith("operator/") && to.startsWith("relay/") && !to.startsWith("relay/contract/"))
      problems.push(`${from} imports ${to}: the operator may import only relay/contract/ of the relay`);
    if (from.startsWith("relay/contract/") && !to.startsWith("relay/contract/"))
      problems.push(`${from} imports ${to}: relay/contract/ must stand on its own`);
  }

// 1. cycles: Tarjan's strongly connected components; every component of more than one file is a cycle
let index = 0;
const stack = [];
const meta = new Map();
const components = [];
function connect(v) {
  const m = { index, low: index, onStack: true };
  index++;
  meta.set(v, m);
  stack.push(v);
  for (const w of graph.get(v) ?? []) {
    const mw = meta.get(w);
    if (!mw) {
      connect(w);
      m.low = Math.min(m.low, meta.get(w).low);
    } else if (mw.onStack) m.low = Math.min(m.low, mw.index);
  }
  if (m.low === m.index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      meta.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component.sort());
  }
}
for (const f of files) if (!meta.has(f)) connect(f);
for (const c of components) {
  const inside = new Set(c);
  const edges = c.flatMap((f) =>
    graph
      .get(f)
      .filter((t) => inside.has(t))
      .map((t) => `    ${f} -> ${t}`),
  );
  problems.push(`import cycle of ${c.length} files:\n${edges.join("\n")}`);
}

if (problems.length) {
  console.error(problems.join("\n"));
  console.error(`check-imports: ${problems.length} problem(s) in ${files.length} files`);
  process.exit(1);
}
console.log(`check-imports: ${files.length} files, no import cycle, operator imports only relay/contract/`);
