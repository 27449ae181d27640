// Test helper for the relay: writes a config directory the way kubelet does (files in a timestamped
// `..<gen>` directory, the `..data` symlink swapped atomically by rename, top-level names linking
// through `..data`), and starts the relay in-process (Relay.start) or as a child process
// (`tsx relay/main.ts --config <dir>`).
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as net from "node:net";
import type { Socket } from "node:net";
import { Writable } from "node:stream";
import * as tls from "node:tls";
import { CONFIG_VERSION, type RelayConfigInput } from "../../relay/contract/config.js";
import { createLogger, type Logger } from "../../relay/log.js";
import { Relay, type RelayOptions } from "../../relay/relay.js";
import { makeCa, makeLeaf, type Ca, type Leaf } from "./certs.js";
import { freePort } from "./ports.js";
import { startProcess, waitFor, type Managed } from "./process.js";

const root = new URL("../..", import.meta.url).pathname;
let generation = 0;

/** Writes `files` (relative path -> content) as a new generation of `dir`, atomically. */
export async function writeConfigDir(dir: string, files: Record<string, string | Buffer>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const gen = `..${new Date().toISOString().replace(/[-:]/g, "_")}.${process.pid}.${++generation}`;
  const genDir = join(dir, gen);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(dirname(join(genDir, rel)), { recursive: true });
    await writeFile(join(genDir, rel), content, { mode: 0o600 });
  }
  let old: string | undefined;
  try {
    old = await readlink(join(dir, "..data"));
  } catch {
    old = undefined;
  }
  await rm(join(dir, "..data_tmp"), { force: true });
  await symlink(gen, join(dir, "..data_tmp"));
  await rename(join(dir, "..data_tmp"), join(dir, "..data"));
  const top = new Set(Object.keys(files).map((f) => f.split("/")[0]!));
  for (const name of top) {
    try {
      await readlink(join(dir, name));
    } catch {
      await symlink(join("..data", name), join(dir, name));
    }
  }
  if (old) await rm(join(dir, old), { recursive: true, force: true });
  // entries of the old generation that are gone now
  for (const e of await readdir(dir)) {
    if (e.startsWith("..") || top.has(e)) continue;
    await rm(join(dir, e), { force: true });
  }
}

export interface TestPorts {
  smtp: number;
  smtps: number;
  submission: number;
  admin: number;
}

export async function testPorts(): Promise<TestPorts> {
  return {
    smtp: await freePort(),
    smtps: await freePort(),
    submission: await freePort(),
    admin: await freePort(),
  };
}

/** The loopback ranges test relays may deliver to through DNS (delivery.allowedInternalCidrs). */
export const TEST_INTERNAL_CIDRS = ["127.0.0.0/8", "::1/128"];

/** A config on loopback with small retry intervals; override anything with `patch`. */
export function testConfig(
  ports: TestPorts,
  queueDir: string,
  patch: Partial<RelayConfigInput> = {},
): RelayConfigInput {
  return {
    version: CONFIG_VERSION,
    relay: "test/edge",
    generation: 1,
    hostname: "relay.test",
    listeners: {
      smtp: { port: ports.smtp, host: "127.0.0.1" },
      smtps: { port: ports.smtps, host: "127.0.0.1" },
      submission: { port: ports.submission, host: "127.0.0.1" },
    },
    admin: { port: ports.admin, host: "127.0.0.1" },
    tls: { certFile: "tls/tls.crt", keyFile: "tls/tls.key" },
    inbound: { require: "none", relayFrom: ["127.0.0.1"], localDomains: ["local.test"] },
    queue: { dir: queueDir, retry: { initial: 0.2, max: 1 }, workers: 8 },
    // every peer of a test is on loopback: MX, mta-sts.<domain> and TLS-RPT endpoints from the
    // test DNS server point there, which the relay refuses by default (issue 22 finding 4)
    delivery: { allowedInternalCidrs: TEST_INTERNAL_CIDRS },
    ...patch,
  };
}

export interface LogCapture {
  lines: Record<string, unknown>[];
  find(pred: (l: Record<string, unknown>) => boolean): Record<string, unknown> | undefined;
}

/** A pino logger that keeps every line (parsed) for assertions; also echoes with RELAY_LOG=1. */
export function captureLogger(): { logger: Logger; capture: LogCapture } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString("utf8").split("\n")) {
        if (!l.trim()) continue;
        lines.push(JSON.parse(l) as Record<string, unknown>);
        if (process.env.RELAY_LOG) process.stderr.write(l + "\n");
      }
      cb();
    },
  });
  return {
    logger: createLogger(stream, "debug"),
    capture: { lines, find: (pred) => lines.find(pred) },
  };
}

export async function startRelay(
  configDir: string,
  o: Partial<RelayOptions> = {},
): Promise<{ relay: Relay; logs: LogCapture }> {
  const { logger, capture } = captureLogger();
  const relay = await Relay.start({ configDir, logger, pollMs: 200, graceMs: 2000, poolIdleMs: 1000, ...o });
  return { relay, logs: capture };
}

/**
 * The set-up every relay mail test shares: a temporary work dir, a CA with a `relay.test` leaf
 * (the relay's own certificate), free loopback ports, a kubelet-style config dir at `<work>/config`
 * and a queue at `<work>/queue`. Start the peers, `configure()`, then `start()`; `stop()` in after().
 */
export interface RelayFixture {
  work: string;
  configDir: string;
  ca: Ca;
  relayCert: Leaf;
  ports: TestPorts;
  /** Set by start(). */
  relay: Relay | undefined;
  logs: LogCapture | undefined;
  /**
   * Writes testConfig(ports, <work>/queue, patch) as config.json (generation counting up unless the
   * patch sets one) with the relay's tls/tls.crt + tls/tls.key (from `cert`, default relayCert) and
   * `files`; returns the config. Does not reload a running relay: call relay.checkConfig() for that.
   */
  configure(
    patch?: Partial<RelayConfigInput>,
    o?: { files?: Record<string, string | Buffer>; cert?: Leaf },
  ): Promise<RelayConfigInput>;
  start(o?: Partial<RelayOptions>): Promise<{ relay: Relay; logs: LogCapture }>;
  /** Stops the relay, then runs `peers` (closing sinks, DNS, Postfix...), then removes the work dir. */
  stop(peers?: () => Promise<unknown>): Promise<void>;
}

/**
 * The inbound side of a relay for an internal sender on loopback: no TLS required, relaying for
 * 127.0.0.1, `local.test` local and handed to `sinkPort`; `stopped` as a deleted MailRelay's.
 */
export function loopbackInbound(sinkPort: number, o: { stopped?: boolean } = {}): Partial<RelayConfigInput> {
  return {
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: sinkPort },
      ...(o.stopped ? { stopped: true } : {}),
    },
  };
}

/**
 * The inbound side of a relay that relays for nobody (the attack tests' relay): its loopback clients
 * are Internet senders who may write only to `local.test`, handed to `internal` when given; `more`
 * adds to the inbound block (localRecipients, ...).
 */
export function outsiderInbound(
  internal?: { host?: string; port: number },
  more: Partial<NonNullable<RelayConfigInput["inbound"]>> = {},
): Pick<RelayConfigInput, "inbound"> {
  return {
    inbound: {
      require: "none",
      relayFrom: [],
      localDomains: ["local.test"],
      ...(internal ? { internalNextHop: { host: internal.host ?? "127.0.0.1", port: internal.port } } : {}),
      ...more,
    },
  };
}

export async function relayFixture(name: string, o: { caName?: string } = {}): Promise<RelayFixture> {
  const work = await mkdtemp(join(tmpdir(), `${name}-`));
  const ca = await makeCa(join(work, "ca"), o.caName);
  const relayCert = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"] });
  const ports = await testPorts();
  const configDir = join(work, "config");
  let generation = 0;
  const f: RelayFixture = {
    work,
    configDir,
    ca,
    relayCert,
    ports,
    relay: undefined,
    logs: undefined,
    async configure(patch = {}, c = {}) {
      const cfg = testConfig(ports, join(work, "queue"), { generation: ++generation, ...patch });
      const cert = c.cert ?? relayCert;
      await writeConfigDir(configDir, {
        "config.json": JSON.stringify(cfg),
        "tls/tls.crt": await readFile(cert.certFile),
        "tls/tls.key": await readFile(cert.keyFile),
        ...c.files,
      });
      return cfg;
    },
    async start(opts = {}) {
      const r = await startRelay(configDir, opts);
      f.relay = r.relay;
      f.logs = r.logs;
      return r;
    },
    async stop(peers) {
      try {
        await f.relay?.stop();
        await peers?.();
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  };
  return f;
}

/** The relay as a child process; resolves when /readyz answers 200. */
export async function startRelayProcess(
  configDir: string,
  adminPort: number,
  logFile: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Managed> {
  const m = startProcess(
    "relay",
    process.execPath,
    ["--import", "tsx", join(root, "relay/main.ts"), "--config", configDir, "--poll-ms", "200"],
    logFile,
    {
      cwd: root,
      env: { ...process.env, SEALPOST_GRACE_SECONDS: "2", ...env },
    },
  );
  await waitFor(
    "relay /readyz",
    async () => {
      if (m.child.exitCode !== null) throw new Error(`relay exited: ${await m.log()}`);
      const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    },
    30_000,
    100,
  );
  return m;
}

/** A raw SMTP client session for exact-reply assertions (optionally from a given loopback address). */
export interface RawSession {
  greeting: string;
  /** Sends one line, resolves with the full (possibly multi-line) reply. */
  cmd(line: string): Promise<string>;
  /** Sends raw bytes (DATA content) and resolves with the next reply. */
  data(body: string): Promise<string>;
  /** Sends raw bytes and waits for nothing (a body in parts, a client that stalls, a pipeline). */
  send(raw: string): void;
  /** The next reply (one of several a pipeline asked for). */
  reply(): Promise<string>;
  /** STARTTLS and the TLS handshake (no verification); resolves with the STARTTLS reply. */
  starttls(): Promise<string>;
  close(): void;
}

/**
 * The first complete reply in a buffer: every line up to and including the first final line
 * ("NNN text"). One read can hold more than one reply (a server that is stopping writes its 421
 * right behind the 250 that ended a transaction, and a loaded event loop reads both at once): the
 * rest stays buffered as the reply to the next command.
 */
const FIRST_REPLY = /^(?:[^\r\n]*\r\n)*?\d{3} [^\r\n]*\r\n/;

export async function rawSession(
  port: number,
  o: { host?: string; localAddress?: string; implicitTls?: boolean } = {},
): Promise<RawSession> {
  let socket: Socket = o.implicitTls
    ? tls.connect({
        host: o.host ?? "127.0.0.1",
        port,
        rejectUnauthorized: false,
        ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      })
    : net.connect({
        host: o.host ?? "127.0.0.1",
        port,
        ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      });
  let buf = "";
  let waiter: ((reply: string) => void) | undefined;
  const onData = (d: Buffer): void => {
    buf += d.toString("latin1");
    const m = FIRST_REPLY.exec(buf);
    if (m && waiter) {
      const w = waiter;
      waiter = undefined;
      buf = buf.slice(m[0].length);
      w(m[0].trimEnd());
    }
  };
  let failed: Error | undefined;
  let onFail: ((e: Error) => void) | undefined;
  socket.on("data", onData);
  const fail = (e: Error): void => {
    failed ??= e;
    onFail?.(e);
  };
  socket.on("error", fail);
  socket.on("close", () => fail(new Error(`connection closed; buffer: ${buf}`)));
  const next = (): Promise<string> =>
    new Promise((resolve, reject) => {
      if (failed && !FIRST_REPLY.test(buf)) return reject(failed);
      const t = setTimeout(() => reject(new Error(`no reply; buffer: ${buf}`)), 10_000);
      onFail = (e) => {
        clearTimeout(t);
        reject(e);
      };
      waiter = (r) => {
        clearTimeout(t);
        onFail = undefined;
        resolve(r);
      };
      onData(Buffer.alloc(0));
    });
  const greeting = await next();
  return {
    greeting,
    cmd(line) {
      const p = next();
      socket.write(line + "\r\n");
      return p;
    },
    data(body) {
      const p = next();
      socket.write(body.replace(/\r?\n/g, "\r\n") + "\r\n.\r\n");
      return p;
    },
    send(raw) {
      socket.write(raw);
    },
    reply: next,
    async starttls() {
      const p = next();
      socket.write("STARTTLS\r\n");
      const reply = await p;
      if (!reply.startsWith("220")) return reply;
      socket.off("data", onData);
      const secure = tls.connect({ socket, rejectUnauthorized: false, servername: "relay.test" });
      await new Promise<void>((resolve, reject) => {
        secure.once("secureConnect", resolve);
        secure.once("error", reject);
      });
      secure.on("data", onData);
      secure.on("error", fail);
      socket.removeAllListeners("close");
      secure.on("close", () => fail(new Error(`connection closed; buffer: ${buf}`)));
      socket = secure;
      return reply;
    },
    close() {
      socket.destroy();
    },
  };
}

/** Base64 of an AUTH PLAIN token. */
export function plainToken(user: string, pass: string): string {
  return Buffer.from(`\0${user}\0${pass}`).toString("base64");
}
