// Ports for the servers a test starts. Asking the kernel for a free port (listen on 0) and releasing
// it is racy: the kernel may hand the same port out again, to our own next freePort() (etcd and
// kube-apiserver once got the same one) or to another process. So a port is reserved, not probed:
//  - handed out at most once per process;
//  - claimed across the test processes of this machine by a file per port, created exclusively and
//    naming the claiming pid, removed when the process exits (a crashed process's claims are swept
//    by the next process that finds them with their pid gone);
//  - taken from below the kernel's ephemeral range, so no outgoing connection or listen(0) of any
//    program is given it between our probe and the server's bind;
//  - probed on TCP and UDP (the DNS servers listen on both) before it is handed out.
import { mkdirSync, openSync, closeSync, readdirSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PortPool {
  /** first and last port (inclusive) handed out */
  range: [number, number];
  /** folder of the claim files shared by the processes of this machine */
  claims: string;
}

/** The ports below the kernel's ephemeral range (or above it when there is no room below). */
export function portRange(ephemeral: [number, number]): [number, number] {
  const [lo, hi] = ephemeral;
  if (lo - 1 >= 20000 + 1000) return [20000, lo - 1];
  if (hi + 1 <= 65535 - 1000) return [hi + 1, 65535];
  return [1024, 65535];
}

function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim()
      .split(/\s+/)
      .map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    // not Linux: the IANA dynamic range
  }
  return [49152, 65535];
}

const defaultPool: PortPool = {
  range: portRange(ephemeralRange()),
  claims: join(tmpdir(), "sealpost-ports"),
};

const handedOut = new Set<number>(); // every port this process reserved or found taken
const claimed = new Map<string, string>(); // claim file -> pid text, removed on exit
const swept = new Set<string>();

process.once("exit", () => {
  for (const file of claimed.keys()) {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Remove the claims of processes that are gone (once per pool and process). */
function sweep(dir: string): void {
  if (swept.has(dir)) return;
  swept.add(dir);
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    try {
      const pid = Number(readFileSync(file, "utf8"));
      if (Number.isInteger(pid) && pid > 0 && !alive(pid)) unlinkSync(file);
    } catch {
      // claimed or removed by someone else meanwhile
    }
  }
}

/** Create the claim file of a port; false when another live process holds it. */
function claim(dir: string, port: number): boolean {
  const file = join(dir, String(port));
  let fd: number;
  try {
    fd = openSync(file, "wx");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
  try {
    writeSync(fd, String(process.pid));
  } finally {
    closeSync(fd);
  }
  claimed.set(file, String(process.pid));
  return true;
}

function unclaim(dir: string, port: number): void {
  const file = join(dir, String(port));
  claimed.delete(file);
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

function bindable(port: number, host: string): Promise<boolean> {
  const tcp = new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
  const udp = new Promise<boolean>((resolve) => {
    const sock = createSocket(host.includes(":") ? "udp6" : "udp4");
    sock.unref();
    sock.once("error", () => {
      sock.close();
      resolve(false);
    });
    sock.bind(port, host, () => sock.close(() => resolve(true)));
  });
  return Promise.all([tcp, udp]).then(([t, u]) => t && u);
}

/**
 * A port on `host` that no other server of this run (this process or another test process on the
 * machine) is given, and that is bindable now. The reservation lasts until the process exits.
 */
export async function freePort(host = "127.0.0.1", pool: PortPool = defaultPool): Promise<number> {
  mkdirSync(pool.claims, { recursive: true });
  sweep(pool.claims);
  const [first, last] = pool.range;
  const size = last - first + 1;
  // every port of the range once, from a random start (processes starting together spread out)
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i++) {
    const port = first + ((start + i) % size);
    if (handedOut.has(port) || !claim(pool.claims, port)) continue;
    handedOut.add(port);
    if (await bindable(port, host)) return port;
    unclaim(pool.claims, port); // someone outside the tests listens there: leave it to them
  }
  throw new Error(`no free port left in ${first}-${last} (claims in ${pool.claims})`);
}
