// The relay's services for its own domains, composed: the TLS-RPT receiver (always there, so its
// metrics exist; it takes reports only when the config names addresses or https) and the HTTPS
// endpoint while the config publishes MTA-STS. The endpoint's port and address are read when it
// starts (at start, or at the first reload that publishes); its certificate is swapped on reload
// without dropping connections (config/load.ts refuses a config whose certificate does not load).
import type { Registry } from "prom-client";
import type { LoadedConfig } from "../config/load.js";
import { fileOf } from "../config/load.js";
import type { Logger } from "../log.js";
import { startMtaStsEndpoint } from "./mta-sts-endpoint.js";
import { TlsRptFigures } from "./tlsrpt-figures.js";
import { TlsRptReceiver } from "./tlsrpt-receiver.js";

export interface OwnDomainsService {
  receiver: TlsRptReceiver;
  /** The endpoint's bound port, when it runs. */
  port(): number | undefined;
  /** After a config reload: a renewed certificate is loaded, a new publication started. */
  reloaded(prev: LoadedConfig): void;
  close(): Promise<void>;
}

type Endpoint = Awaited<ReturnType<typeof startMtaStsEndpoint>>;

export async function startOwnDomains(d: {
  loaded: () => LoadedConfig;
  registry: Registry;
  log: Logger;
  /** Where the received TLS-RPT figures are kept across restarts (the queue volume). */
  figuresFile?: string;
}): Promise<OwnDomainsService> {
  const figures = new TlsRptFigures(d.registry, d.figuresFile);
  const receiver = new TlsRptReceiver(figures, () => d.loaded().config, d.log);
  let endpoint: Endpoint | undefined;
  let starting: Promise<void> | undefined;
  const start = (l: LoadedConfig): Promise<void> => {
    const pub = l.config.ownDomains?.mtaSts;
    if (!pub || endpoint || starting) return starting ?? Promise.resolve();
    starting = startMtaStsEndpoint(
      { publication: () => d.loaded().config.ownDomains?.mtaSts, receiver },
      { port: pub.port, host: pub.host, cert: fileOf(l, pub.certFile), key: fileOf(l, pub.keyFile) },
    )
      .then((e) => {
        endpoint = e;
        d.log.info(
          { event: "mta-sts-endpoint", port: e.port, domains: pub.domains },
          "MTA-STS endpoint started",
        );
      })
      .catch((e: unknown) =>
        d.log.error({ event: "mta-sts-endpoint", err: String(e) }, "MTA-STS endpoint could not start"),
      )
      .finally(() => (starting = undefined));
    return starting;
  };
  await start(d.loaded());
  return {
    receiver,
    port: () => endpoint?.port,
    reloaded(prev) {
      const now = d.loaded();
      const p = now.config.ownDomains?.mtaSts;
      const was = prev.config.ownDomains?.mtaSts;
      if (!p) return;
      if (!endpoint) return void start(now);
      const cert = fileOf(now, p.certFile);
      const key = fileOf(now, p.keyFile);
      if (was && cert.equals(fileOf(prev, was.certFile)) && key.equals(fileOf(prev, was.keyFile))) return;
      endpoint.setCertificate(cert, key);
      d.log.info({ event: "certificate-reloaded", what: "mta-sts" }, "MTA-STS certificate reloaded");
    },
    async close() {
      await figures.flush();
      await starting;
      const e = endpoint;
      if (!e) return;
      const closed = new Promise<void>((r) => e.server.close(() => r()));
      e.server.closeAllConnections();
      await closed;
    },
  };
}
