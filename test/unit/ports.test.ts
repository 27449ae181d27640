// test/support/ports.ts: no two servers of a run are given the same port. The old freePort() let the
// kernel pick a port and released it before the next pick, so etcd and kube-apiserver could be handed
// the same one (kube-apiserver then failed to bind and the examples suite was cancelled).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { freePort, portRange, type PortPool } from "../support/ports.js";

const root = new URL("../..", import.meta.url).pathname;

function pool(range: [number, number]): PortPool {
  return { range, claims: mkdtempSync(join(tmpdir(), "ports-test-")) };
}

/** A base port for a private range, well inside the pool's default range */
function base(size: number): number {
  return 21000 + Math.floor(Math.random() * (10000 - size));
}

interface Child {
  ports: Promise<number[]>;
  /** lets the child exit (a child keeps its ports until then) */
  release(): Promise<void>;
}

function childPorts(p: PortPool, count: number): Child {
  const code = `
    import { freePort } from ${JSON.stringify(join(root, "test/support/ports.ts"))};
    const pool = ${JSON.stringify(p)};
    const out = [];
    for (let i = 0; i < ${count}; i++) out.push(await freePort("127.0.0.1", pool));
    console.log(JSON.stringify(out));
    process.stdin.resume();
    process.stdin.on("end", () => process.exit(0));
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    cwd: root,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", resolve);
  });
  const ports = new Promise<number[]>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(JSON.parse(out) as number[]);
    });
    void exited.then((rc) => reject(new Error(`child exited (rc=${rc}) before printing its ports`)));
  });
  return {
    ports,
    async release() {
      child.stdin.end();
      const rc = await exited;
      assert.equal(rc, 0);
    },
  };
}

describe("freePort reserves ports (the etcd / kube-apiserver port race)", () => {
  it("never hands the same port out twice in a process, even when nothing binds it in between", async () => {
    // the servers of a run pick all their ports before any of them binds (controlplane.ts)
    const p = pool(portRange([32768, 60999]));
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const port = await freePort("127.0.0.1", p);
      assert.ok(!seen.has(port), `port ${port} handed out twice`);
      seen.add(port);
    }
  });

  it("takes ports from below the kernel's ephemeral range", () => {
    assert.deepEqual(portRange([32768, 60999]), [20000, 32767]);
    assert.deepEqual(portRange([10000, 50000]), [50001, 65535]);
    assert.deepEqual(portRange([1024, 65535]), [1024, 65535]);
  });

  it("hands out every port of a pool once, then fails with the pool named", async () => {
    const first = base(20);
    const p = pool([first, first + 19]);
    const got: number[] = [];
    await assert.rejects(async () => {
      for (;;) got.push(await freePort("127.0.0.1", p));
    }, /no free port left in \d+-\d+/);
    assert.equal(new Set(got).size, got.length);
    assert.ok(got.length > 0 && got.length <= 20);
    assert.ok(got.every((port) => port >= first && port <= first + 19));
  });

  it("skips a port some other program listens on", async () => {
    const first = base(2);
    const p = pool([first, first + 1]);
    const srv = createServer();
    const busy = await new Promise<number | undefined>((resolve) => {
      srv.once("error", () => resolve(undefined));
      srv.listen(first, "127.0.0.1", () => resolve(first));
    });
    try {
      const got = await freePort("127.0.0.1", p).catch(() => undefined);
      if (busy !== undefined) assert.notEqual(got, busy);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });

  it("two test processes drawing from one pool at once never share a port", async () => {
    const first = base(400);
    const p = pool([first, first + 399]);
    const children = [childPorts(p, 150), childPorts(p, 150)];
    const [a = [], b = []] = await Promise.all(children.map((c) => c.ports));
    await Promise.all(children.map((c) => c.release()));
    assert.equal(new Set(a).size, a.length);
    assert.equal(new Set(b).size, b.length);
    const shared = a.filter((port) => b.includes(port));
    assert.deepEqual(shared, [], "ports handed to both processes");
    // claims go away with their process
    assert.deepEqual(readdirSync(p.claims), []);
  });

  it("sweeps the claims of a process that is gone", async () => {
    const first = base(1);
    const p = pool([first, first]);
    // a pid that cannot be alive (above the kernel's pid_max, 2^22)
    writeFileSync(join(p.claims, String(first)), "99999999");
    const port = await freePort("127.0.0.1", p).catch(() => undefined);
    assert.ok(!existsSync(join(p.claims, String(first))) || port === first);
  });
});
