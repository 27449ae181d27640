// The delivery thread's entry (delivery-thread.ts starts it): a Deliverer built as the relay's own
// thread would build it (delivery-runtime.ts), over the config the relay posts, with its own
// connection pool, resolver and destination filter. MTA-STS lookups are asked of the relay's
// thread, which keeps the policy cache, its refresh and its figures; everything observed goes
// back as records, log lines as lines.
import { readFile } from "node:fs/promises";
import { parentPort, workerData } from "node:worker_threads";
import type { LoadedConfig } from "./config/load.js";
import { buildDeliverer, OBSERVER_NAMES, type DeliveryObservers } from "./delivery-runtime.js";
import type { FromThread, ToThread, WireBody, WorkerData } from "./delivery-thread.js";
import type { ListenerKind } from "./inbound/rules.js";
import { createLogger } from "./log.js";
import { DestinationFilter } from "./net/address-class.js";
import { ownAddresses } from "./net/own-addresses.js";
import type { StsLookup } from "./outbound/mta-sts.js";
import { makeResolver, type Dns } from "./outbound/mx.js";
import { ConnectionPool } from "./outbound/pool.js";
import { bufferBody, fileBody, type MessageBody } from "./queue/message-body.js";

const port = parentPort!;
const data = workerData as WorkerData;
const post = (m: FromThread): void => port.postMessage(m);

let loaded!: LoadedConfig;
let resolver: Dns | undefined;
let destinations = new DestinationFilter([]);
let bound: [ListenerKind, number][] = [];
const pool = new ConnectionPool(data.poolIdleMs, () => loaded.config.queue.workers);

let nextAsk = 0;
const asked = new Map<number, { resolve(l: StsLookup): void; reject(e: Error): void }>();
const mtaSts = (domain: string): Promise<StsLookup> =>
  new Promise((resolve, reject) => {
    const id = ++nextAsk;
    asked.set(id, { resolve, reject });
    post({ t: "sts", id, domain });
  });

const observers = Object.fromEntries(
  OBSERVER_NAMES.map((name) => [name, (record: unknown) => post({ t: "event", name, record })]),
) as unknown as DeliveryObservers;

const deliverer = buildDeliverer({
  loaded: () => loaded,
  resolver: () => resolver,
  destinations: () => destinations,
  bound: () => bound,
  mtaSts,
  observers,
  log: createLogger({ write: (line: string) => post({ t: "log", line }) }, data.logLevel, "json"),
  pool,
  timeouts: data.timeouts,
  mxPort: data.mxPort,
});

/** Buffers arrive as Uint8Arrays: the config's files are Buffers again. */
function revived(l: LoadedConfig): LoadedConfig {
  const files = new Map([...l.files].map(([k, v]) => [k, Buffer.from(v.buffer, v.byteOffset, v.byteLength)]));
  return { ...l, files };
}

function bodyOf(w: WireBody): MessageBody {
  if ("bytes" in w) return bufferBody(Buffer.from(w.bytes.buffer, w.bytes.byteOffset, w.bytes.byteLength));
  const head = Buffer.from(w.head.buffer, w.head.byteOffset, w.head.byteLength);
  return fileBody(w.file, w.size, head, () => readFile(w.file));
}

port.on("message", (m: ToThread) => {
  switch (m.t) {
    case "config":
      loaded = revived(m.loaded);
      resolver = makeResolver(loaded.config.dns.servers);
      destinations = new DestinationFilter(loaded.config.delivery.allowedInternalCidrs, ownAddresses());
      pool.clear(); // no connection set up under the old policies is reused
      return;
    case "bound":
      bound = m.bound;
      return;
    case "deliver":
      deliverer.deliver({ ...m.req, message: bodyOf(m.req.message) }).then(
        (results) => post({ t: "result", id: m.id, results }),
        (e: unknown) => post({ t: "result", id: m.id, error: String(e) }),
      );
      return;
    case "sts": {
      const a = asked.get(m.id);
      if (!a) return;
      asked.delete(m.id);
      if (m.lookup) a.resolve(m.lookup);
      else a.reject(new Error(m.error ?? "MTA-STS lookup failed"));
      return;
    }
  }
});
