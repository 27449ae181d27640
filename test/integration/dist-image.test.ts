// What the container image ships, built here without Docker: scripts/build-dist.sh runs on a copy of
// exactly the build context .dockerignore lets through (so a file the build needs but the context
// lacks fails here, not in CI's docker build), and the result is checked the way the Dockerfile uses
// it: the ENTRYPOINT exists, both subcommands start, no tests or dev dependencies, nothing writable by
// others, and the flags the Helm chart passes are flags the operator knows.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { cp as copy, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { ltsNodeBinary, repoRoot, toolchainBin } from "../support/toolchain.js";

const run = promisify(execFile);

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions per stage (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): Instruction[][] {
  const stages: Instruction[][] = [];
  const lines = text.replace(/\\\n/g, " ").split("\n");
  for (const line of lines) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m || line.trimStart().startsWith("#")) continue;
    const ins = { op: m[1]!.toUpperCase(), args: m[2]!.trim() };
    if (ins.op === "FROM") stages.push([]);
    stages.at(-1)?.push(ins);
  }
  return stages;
}

/** .dockerignore as an allow-list: the patterns after `*` that start with `!`. */
async function allowList(): Promise<string[]> {
  const lines = (await readFile(join(repoRoot, ".dockerignore"), "utf8")).split("\n").map((l) => l.trim());
  assert.equal(
    lines.filter((l) => l && !l.startsWith("#"))[0],
    "*",
    ".dockerignore starts by excluding everything",
  );
  return lines.filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, ""));
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await walk(p)));
  }
  return out;
}

const dockerfile = parseDockerfile(await readFile(join(repoRoot, "Dockerfile"), "utf8"));
const runtime = dockerfile.at(-1)!;
const build = dockerfile[0]!;

describe("Dockerfile", () => {
  it("builds and runs on Node 26 (bookworm-slim) in two stages", () => {
    assert.equal(dockerfile.length, 2);
    assert.match(build[0]!.args, /^node:26-bookworm-slim AS build$/);
    assert.match(runtime[0]!.args, /^node:26-bookworm-slim$/);
    // the entry point below runs on the same major (scripts/node-lts.sh pins it)
    const version = execFileSync(ltsNodeBinary(), ["--version"], { encoding: "utf8" });
    assert.match(version, /^v26\./);
  });

  it("runs as a non-root user with NODE_ENV=production", () => {
    const users = runtime.filter((i) => i.op === "USER").map((i) => i.args);
    assert.equal(users.length, 1);
    const [user, group] = users[0]!.split(":");
    assert.ok(user && !["0", "root"].includes(user), `USER ${users[0]}`);
    assert.ok(!group || !["0", "root"].includes(group), `USER ${users[0]}`);
    assert.match(
      runtime
        .filter((i) => i.op === "ENV")
        .map((i) => i.args)
        .join(" "),
      /NODE_ENV=production/,
    );
  });

  it("copies only what .dockerignore lets into the build context", async () => {
    const allowed = await allowList();
    const sources = build
      .filter((i) => i.op === "COPY" && !i.args.startsWith("--from"))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const s of sources) assert.ok(allowed.includes(s), `COPY ${s} is excluded by .dockerignore`);
    assert.deepEqual([...new Set(sources)].sort(), [...allowed].sort(), "the allow-list has nothing unused");
  });
});

describe("scripts/build-dist.sh (the image's /app)", () => {
  let tmp: string;
  let out: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "sealpost-dist-"));
    // the Docker build context: only the allow-listed paths, plus the dev dependencies that the build
    // stage's `npm ci` installs (linked, not reinstalled: tsc only needs to find them)
    const context = join(tmp, "context");
    for (const p of await allowList()) {
      await mkdir(dirname(join(context, p)), { recursive: true });
      await copy(join(repoRoot, p), join(context, p), {
        recursive: true,
        filter: (src) => !/\.(pem|key|crt)$|\.test\.ts$/.test(src),
      });
    }
    await symlink(join(repoRoot, "node_modules"), join(context, "node_modules"));
    // the Dockerfile's `RUN bash scripts/build-dist.sh /out`, then `COPY --from=build /out /app`
    const runLine = build.find((i) => i.op === "RUN" && i.args.includes("build-dist.sh"));
    assert.equal(runLine?.args, "bash scripts/build-dist.sh /out");
    out = join(tmp, "out");
    await run("bash", [join(context, "scripts/build-dist.sh"), out], { cwd: context, maxBuffer: 16 << 20 });
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  /**
   * Runs the image's ENTRYPOINT with these arguments on the Node the image has (the current LTS, the
   * one the tests run on too); resolves with the exit code and output.
   */
  async function entrypoint(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const ep = JSON.parse(runtime.find((i) => i.op === "ENTRYPOINT")!.args) as string[];
    assert.equal(ep[0], "node");
    const script = join(out, relative("/app", ep[1]!));
    const env = { ...process.env, NODE_ENV: "production" };
    try {
      const r = await run(ltsNodeBinary(), [script, ...args], { env, timeout: 30_000 });
      return { code: 0, ...r };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string };
      return {
        code: typeof err.code === "number" ? err.code : -1,
        stdout: err.stdout ?? "",
        stderr: err.stderr ?? "",
      };
    }
  }

  it("has the ENTRYPOINT at the path the Dockerfile names", async () => {
    const copyLine = runtime.find((i) => i.op === "COPY" && i.args.startsWith("--from=build"));
    assert.equal(copyLine?.args, "--from=build /out /app");
    const ep = JSON.parse(runtime.find((i) => i.op === "ENTRYPOINT")!.args) as string[];
    assert.deepEqual(ep, ["node", "/app/dist/bin/sealpost.js"]);
    assert.ok((await lstat(join(out, "dist/bin/sealpost.js"))).isFile());
  });

  it("holds the compiled app and production dependencies, no tests, no dev packages", async () => {
    assert.deepEqual((await readdir(out)).sort(), [
      "dist",
      "node_modules",
      "package-lock.json",
      "package.json",
    ]);
    assert.deepEqual((await readdir(join(out, "dist"))).sort(), ["api", "bin", "cli", "operator", "relay"]);
    const pkg = JSON.parse(await readFile(join(out, "package.json"), "utf8")) as { type: string };
    assert.equal(pkg.type, "module", "node loads dist/**/*.js as ES modules");
    const files = (await walk(join(out, "dist"))).map((f) => relative(out, f));
    assert.deepEqual(
      files.filter((f) => /(^|\/)(test|bench|demo|scripts)(\/|$)|\.test\.js$|\.ts$/.test(f)),
      [],
    );

    const lock = JSON.parse(await readFile(join(repoRoot, "package-lock.json"), "utf8")) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const installed = (await walk(join(out, "node_modules")))
      .map((f) => relative(out, f))
      .filter((f) => f in lock.packages);
    assert.ok(installed.includes("node_modules/@kubernetes/client-node"));
    assert.ok(installed.includes("node_modules/smtp-server"));
    const dev = installed.filter((f) => lock.packages[f]!.dev);
    assert.deepEqual(dev, [], "dev dependencies in the image");
    for (const p of ["typescript", "tsx", "eslint", "prettier"])
      assert.ok(!installed.includes(`node_modules/${p}`), p);
    // what node never loads from a dependency (type declarations, source maps, TypeScript sources)
    const unused = (await walk(join(out, "node_modules")))
      .map((f) => relative(out, f))
      .filter((f) => /\.([mc]?ts|map)$/.test(f));
    assert.deepEqual(unused.slice(0, 5), [], `${unused.length} files node never loads`);
  });

  it("has nothing writable by group or others", async () => {
    const writable: string[] = [];
    for (const f of [out, ...(await walk(out))]) {
      const st = await lstat(f);
      if (!st.isSymbolicLink() && st.mode & 0o022)
        writable.push(`${relative(out, f)} ${(st.mode & 0o777).toString(8)}`);
    }
    assert.deepEqual(writable, []);
  });

  it("starts both subcommands: `sealpost operator --help`, `sealpost relay` (usage without --config)", async () => {
    const help = await entrypoint("--help");
    assert.equal(help.code, 0);
    assert.match(help.stdout, /operator/);
    assert.match(help.stdout, /relay --config/);
    const op = await entrypoint("operator", "--help");
    assert.equal(op.code, 0, op.stderr);
    assert.match(op.stdout, /--leader-elect/);
    // without --config the relay loads completely, then gives a one-line usage error, exits 2
    const relay = await entrypoint("relay");
    assert.equal(relay.code, 2, relay.stderr);
    assert.match(relay.stderr, /^sealpost relay: --config DIR is required/);
    const relayHelp = await entrypoint("relay", "--help");
    assert.equal(relayHelp.code, 0, relayHelp.stderr);
    assert.match(relayHelp.stdout, /^usage: sealpost relay --config DIR/);
    // the CLI tools beside the services (cli/) are in the image too
    const imp = await entrypoint("import", "postfix", "--help");
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stdout, /usage: sealpost import postfix/);
    const none = await entrypoint();
    assert.equal(none.code, 2);
    const bad = await entrypoint("bogus");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command "bogus"/);
  });

  it("knows every flag the Helm chart passes to `sealpost operator`", async () => {
    const helm = join(toolchainBin(["etcd", "kube-apiserver", "kubectl", "helm"]), "helm");
    const rendered = await run(helm, [
      "template",
      "sealpost",
      join(repoRoot, "charts/sealpost"),
      "--kube-version",
      "1.36.3",
      "--set",
      "watchNamespaces={a,b}",
    ]);
    type Deployment = { kind: string; spec: { template: { spec: { containers: { args: string[] }[] } } } };
    const deploy = parseAllDocuments(rendered.stdout)
      .map((d) => d.toJS() as Deployment | null)
      .find((o) => o?.kind === "Deployment")!;
    const args = deploy.spec.template.spec.containers[0]!.args;
    assert.equal(args[0], "operator");
    const usage = (await entrypoint("operator", "--help")).stdout;
    const known = new Set([...usage.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]));
    for (const a of args.slice(1)) assert.ok(known.has(a.split("=")[0]), `operator does not know ${a}`);
  });
});
