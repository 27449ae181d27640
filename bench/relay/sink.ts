// The bench sink as seen from the bench: a child process (sink-child.ts) so that its CPU is not
// taken from the load generator's event loop; receipts arrive over IPC.
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The header carrying each message's unique id, by which the sink matches receipts to sends. */
export const ID_HEADER = "X-Bench-Id";

export interface Receipt {
  id: string;
  /** Epoch ms, when the sink had the whole message. */
  t: number;
  secure: boolean;
}

export type SinkMessage =
  { type: "listening"; port: number } | { type: "receipts"; receipts: Receipt[]; connections: number };

export interface BenchSink {
  port: number;
  /** Receipt time (epoch ms) by X-Bench-Id. */
  received: Map<string, number>;
  /** Messages that arrived without TLS (must stay 0: both relays are told to require TLS). */
  insecure: number;
  /** SMTP connections the sink accepted since the last reset (the relay's outbound connections). */
  connections: number;
  /** Resolves once every id is in `received`, or after timeoutMs with what arrived. */
  waitFor(ids: Iterable<string>, timeoutMs: number): Promise<boolean>;
  /** Forgets what arrived (between runs). */
  reset(): void;
  stop(): Promise<void>;
}

export async function startBenchSink(cert: { certFile: string; keyFile: string }): Promise<BenchSink> {
  const child: ChildProcess = fork(
    fileURLToPath(new URL("./sink-child.ts", import.meta.url)),
    [cert.certFile, cert.keyFile],
    { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  const received = new Map<string, number>();
  const sink = { insecure: 0, connections: 0, connectionsAtReset: 0 };
  let notify: (() => void) | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`sink exited (${code})`)));
    child.on("message", (m: SinkMessage) => {
      if (m.type === "listening") resolve(m.port);
      else {
        sink.connections = m.connections;
        for (const r of m.receipts) {
          received.set(r.id, r.t);
          if (!r.secure) sink.insecure++;
        }
        notify?.();
      }
    });
  });
  return {
    port,
    received,
    get insecure() {
      return sink.insecure;
    },
    get connections() {
      return sink.connections - sink.connectionsAtReset;
    },
    async waitFor(ids, timeoutMs) {
      const want = [...ids];
      const deadline = Date.now() + timeoutMs;
      while (!want.every((id) => received.has(id))) {
        const left = deadline - Date.now();
        if (left <= 0) return false;
        await new Promise<void>((r) => {
          notify = r;
          setTimeout(r, Math.min(left, 500));
        });
      }
      return true;
    },
    reset() {
      received.clear();
      sink.insecure = 0;
      sink.connectionsAtReset = sink.connections;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
