// The relay process, composed: config (load + watch), durable queue and scheduler, outbound
// deliverer with its connection pool, inbound listeners, admin port. `Relay.start` is what
// relay/main.ts runs and what the tests start in-process. A composition root: what the parts do is
// in their modules (key material: config/key-material.ts; what a delivery event leads to:
// delivery-observers.ts; TLS-RPT reporting: tlsrpt-reporting.ts).
import type { Server } from "node:http";
import { join } from "node:path";
import { startAdmin } from "./admin.js";
import { AuditBook } from "./audit-figures.js";
import { TransitBook } from "./transit-figures.js";
import { PartnerCertificates } from "./partner-certificates.js";
import type { RelayStatus } from "./contract/status.js";
import { errorMessage } from "./contract/failure.js";
import {
  dkimKeyFor,
  inboundState,
  materialFor,
  openpgpMaterialFor,
  smimeMaterialFor,
} from "./config/key-material.js";
import { fileOf, loadConfig, type LoadedConfig } from "./config/load.js";
import { watchConfig, type ConfigWatcher } from "./config/watch.js";
import { deliveryObservers } from "./delivery-observers.js";
import { DestinationFilter } from "./net/address-class.js";
import { ownAddresses } from "./net/own-addresses.js";
import { InboundListeners, type InboundState } from "./inbound/server.js";
import { createLogger, type Logger } from "./log.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { Deliverer } from "./outbound/deliver.js";
import { MtaSts } from "./outbound/mta-sts.js";
import { StsRefresher, type RefreshReport } from "./outbound/mta-sts-refresh.js";
import { Wkd } from "./outbound/wkd.js";
import { isSelfHop, type SelfView } from "./outbound/loop.js";
import { TlsRptStore, type SentReport } from "./outbound/tlsrpt.js";
import { makeResolver, type Dns } from "./outbound/mx.js";
import { makeSecureDns } from "./outbound/dnssec.js";
import { ConnectionPool } from "./outbound/pool.js";
import { DEFAULT_TIMEOUTS, type Timeouts } from "./outbound/transport-options.js";
import { checkAdminToken, handleQueueRequest, PolicyFiguresBook } from "./queue/admin-api.js";
import { Drain, type DrainStatus } from "./queue/drain.js";
import { fleetKeyOf } from "./queue/handover.js";
import { Scheduler } from "./queue/scheduler.js";
import type { Envelope } from "./queue/envelope.js";
import { damageText, Spool, type Recovered } from "./queue/spool.js";
import { configuredReserve } from "./queue/space-reserve.js";
import { handleReceiptsRequest } from "./receipts/admin-api.js";
import { CheckLimiter, DOMAIN_INTERVAL_MS, handleCheckRequest } from "./check/admin-api.js";
import { ProbeCache, runCheck } from "./check/run.js";
import { receiptOf } from "./receipts/receipt.js";
import { ReceiptLog } from "./receipts/receipt-log.js";
import { figuresWithinBudget } from "./status-figures.js";
import { startTlsRptReporting, type TlsRptReporting } from "./tlsrpt-reporting.js";
import { startOwnDomains, type OwnDomainsService } from "./own-domains/service.js";

export interface RelayOptions {
  configDir: string;
  logger?: Logger;
  /** Config directory poll interval (fs.watch triggers earlier checks). */
  pollMs?: number;
  /** Shutdown grace period for open sessions and deliveries in flight. */
  graceMs?: number;
  timeouts?: Timeouts;
  /** Idle time of pooled outbound connections. */
  poolIdleMs?: number;
  /** Port for MX-resolved next hops (25; tests run peers on other ports). */
  mxPort?: number;
  /** Tests: the queued messages found at startup are handed to the scheduler only once this settles. */
  recoveryGate?: Promise<void>;
  /** The clock of the shadow-mode figures and the certificate watch (tests simulate days with it). */
  now?: () => Date;
  /** The clock policy exceptions are judged by (tests move past an exception's until with it). */
  exceptionClock?: () => Date;
  /** Tests: the body admission's window and bounds (relay/inbound/body-admission.ts). */
  bodyAdmission?: { window?: number; maxWaitMs?: number; lapseMs?: number };
}

/** start() waits this long for the queue found at startup before it returns (listening already). */
const RECOVERY_WAIT_MS = 1000;

export class Relay {
  readonly log: Logger;
  readonly metrics: Metrics;
  private state!: InboundState;
  private resolver: Dns | undefined;
  /** Where destinations DNS chose may be (issue 22 finding 4), per loaded config. */
  private destinations = new DestinationFilter([]);
  private listeners!: InboundListeners;
  private scheduler!: Scheduler;
  private pool: ConnectionPool;
  private watcher: ConfigWatcher | undefined;
  private admin: { server: Server; port: number } | undefined;
  private listening = false;
  private lastReloadError: string | undefined;
  private stopping: Promise<void> | undefined;
  private figures = new PolicyFiguresBook();
  private mtaSts?: MtaSts;
  private stsRefresh?: NodeJS.Timeout;
  private spool!: Spool;
  private drainer: Drain | undefined;
  private tlsRpt: TlsRptReporting | undefined;
  /** The encryption receipts (relay/receipts/). */
  receipts: ReceiptLog | undefined;
  /** Settles once the queue found at startup is in the scheduler (or the relay stopped first). */
  recovered: Promise<void> = Promise.resolve();
  /** The queue found at startup is not in the scheduler yet: depth() does not count it. */
  private recovering = false;
  /** New mail refused for the reserve at the last reading: logged when that changes, not per message. */
  private inReserve = false;
  private audit!: AuditBook;
  /** MTA-STS published and TLS-RPT received for our own domains (relay/own-domains/). */
  private own!: OwnDomainsService;
  private transit!: TransitBook;
  private certificates!: PartnerCertificates;

  private constructor(private o: RelayOptions) {
    this.log = o.logger ?? createLogger();
    this.metrics = createMetrics();
    this.pool = new ConnectionPool(o.poolIdleMs ?? 5000, () => this.state.loaded.config.queue.workers);
  }

  get loaded(): LoadedConfig {
    return this.state.loaded;
  }

  static async start(o: RelayOptions): Promise<Relay> {
    const r = new Relay(o);
    await r.init();
    return r;
  }

  private async init(): Promise<void> {
    const { result } = await loadConfig(this.o.configDir);
    if (!result.ok) throw new Error(`config ${this.o.configDir}: ${result.code}: ${result.message}`);
    this.apply(result.value, true);
    const c = result.value.config;
    // new mail is accepted before the queued messages are read (a large backlog takes seconds)
    const { spool, recovery } = await Spool.openForNew(c.queue.dir, {
      space: { onReading: () => this.watchReserve() },
      onNewMailRefused: () => this.watchReserve(true),
    });
    this.spool = spool;
    this.metrics.bindVolume({
      freeBytes: () => spool.space.freeBytes,
      reserveBytes: () => this.reserve(),
    });
    const receipts = await ReceiptLog.open({ queueDir: c.queue.dir, relay: c.relay, log: this.log });
    this.receipts = receipts;
    const mtaSts = new MtaSts({
      dns: () => this.resolver,
      cacheDir: () => c.queue.dir,
      ca: () => {
        const f = this.state.loaded.config.mtaSts.caFile;
        return f ? fileOf(this.state.loaded, f) : undefined;
      },
      httpsPort: () => this.state.loaded.config.mtaSts.httpsPort ?? 443,
      fetchDeadlineMs: () => this.state.loaded.config.delivery.fetchTimeoutSeconds * 1000,
      destinations: () => this.destinations,
    });
    this.mtaSts = mtaSts;
    this.metrics.bindMtaSts(mtaSts);
    this.startStsRefresh(mtaSts);
    const wkd = new Wkd({
      dns: () => this.resolver,
      cacheDir: () => c.queue.dir,
      ca: () => {
        const f = this.state.loaded.config.wkd.caFile;
        return f ? fileOf(this.state.loaded, f) : undefined;
      },
      httpsPort: () => this.state.loaded.config.wkd.httpsPort ?? 443,
      ttlMs: () => this.state.loaded.config.wkd.cacheTtlSeconds * 1000,
      fetchDeadlineMs: () => this.state.loaded.config.delivery.fetchTimeoutSeconds * 1000,
      destinations: () => this.destinations,
      secureDns: () => makeSecureDns(this.state.loaded.config.dns.servers),
    });
    const now = this.o.now ?? (() => new Date());
    this.audit = new AuditBook(join(c.queue.dir, "tls-audit.json"), now);
    this.transit = new TransitBook(join(c.queue.dir, "transit-report.json"), now);
    this.certificates = new PartnerCertificates(join(c.queue.dir, "partner-certificates.json"), now);
    this.metrics.bindPartnerCertificates(this.certificates);
    const observers = deliveryObservers({
      audit: this.audit,
      transit: this.transit,
      certificates: this.certificates,
      metrics: this.metrics,
      log: this.log,
      figures: this.figures,
      config: () => this.state.loaded.config,
      tlsRpt: () => this.tlsRpt?.store,
    });
    const deliverer = new Deliverer({
      pool: this.pool,
      dns: () => this.resolver,
      secureDns: () => makeSecureDns(this.state.loaded.config.dns.servers),
      material: (route) => materialFor(this.state.loaded, route),
      ehloName: () => this.state.loaded.config.hostname,
      mtaSts: (domain, carried) => mtaSts.lookup(domain, carried),
      smime: (route) => smimeMaterialFor(this.state.loaded, route, this.log),
      dkim: () => this.state.loaded.config.dkim,
      dkimKey: (entry) => dkimKeyFor(this.state.loaded, entry),
      openpgp: (route) => openpgpMaterialFor(this.state.loaded, route, this.log),
      wkd: (address) => wkd.lookup(address),
      timeouts: this.o.timeouts ?? DEFAULT_TIMEOUTS,
      limits: () => this.state.loaded.config.delivery,
      maxConcurrent: () => this.state.loaded.config.queue.workers,
      destinations: () => this.destinations,
      mxPort: this.o.mxPort ?? 25,
      isSelf: (hop) => isSelfHop(this.selfView(), hop),
      ...(this.o.exceptionClock ? { exceptionClock: this.o.exceptionClock } : {}),
      ...observers,
    });
    this.scheduler = new Scheduler({
      spool,
      config: () => this.state.loaded,
      deliverer,
      log: this.log,
      metrics: this.metrics,
      receipt: (env, line, r) => {
        const l = this.state.loaded;
        const requireTls = env.requireTls === true;
        const receipt = receiptOf(line, r, {
          config: l.config,
          configHash: l.hash,
          requireTls,
          now: Date.now(),
        });
        return receipt ? receipts.append(receipt) : Promise.resolve();
      },
    });
    this.metrics.bindQueue(this.scheduler);
    this.startTlsRpt(new TlsRptStore(c.queue.dir), spool);
    this.own = await startOwnDomains({
      loaded: () => this.state.loaded,
      registry: this.metrics.registry,
      log: this.log,
      figuresFile: join(c.queue.dir, "tlsrpt-received.json"),
    });
    this.listeners = new InboundListeners({
      current: () => this.state,
      spool,
      onQueued: (env) => this.queued(env),
      metrics: this.metrics,
      log: this.log,
      tlsRpt: this.own.receiver,
      ...(this.o.bodyAdmission ? { bodyAdmission: this.o.bodyAdmission } : {}),
    });
    await this.listeners.start();
    this.listening = true;
    this.recovering = true;
    this.recovered = this.recover(recovery);
    const checkLimiter = new CheckLimiter();
    const checkProbes = new ProbeCache(DOMAIN_INTERVAL_MS);
    this.admin = await startAdmin(
      {
        ready: () => this.listening && !this.stopping && !this.drainer,
        status: () => this.status(),
        registry: this.metrics.registry,
        authorized: async (req) =>
          !(await checkAdminToken(
            { config: () => this.state.loaded.config, configDir: this.o.configDir },
            req,
          )),
        hostNames: () => [this.state.loaded.config.hostname, ...this.state.loaded.config.admin.hosts],
        handle: (req, res) =>
          handleReceiptsRequest(
            {
              config: () => this.state.loaded.config,
              configDir: this.o.configDir,
              receipts: () => this.receipts,
            },
            req,
            res,
          ) ||
          handleCheckRequest(
            {
              config: () => this.state.loaded.config,
              configDir: this.o.configDir,
              limiter: checkLimiter,
              run: runCheck,
              // what this relay's delivery would use: its resolvers, MTA-STS cache, filter, MX port
              checkDeps: (policy) => {
                const ca = policy.outbound.tls.caFile;
                return {
                  dns: this.resolver,
                  secureDns: makeSecureDns(this.state.loaded.config.dns.servers),
                  sts: (domain) => mtaSts.lookup(domain),
                  port: this.o.mxPort ?? 25,
                  refusal: (address) => this.destinations.refusal(address),
                  probes: checkProbes,
                  probe: {
                    ehloName: this.state.loaded.config.hostname,
                    timeoutMs: 10_000,
                    ...(ca ? { ca: fileOf(this.state.loaded, ca) } : {}),
                  },
                };
              },
            },
            req,
            res,
          ) ||
          handleQueueRequest(
            {
              queue: this.scheduler,
              config: () => this.state.loaded.config,
              configDir: this.o.configDir,
              recovering: () => this.recovering,
              drain: () => {
                const done = this.drain();
                return { status: this.drainer!.status(), done };
              },
            },
            req,
            res,
          ),
      },
      c.admin.port,
      c.admin.host,
    );
    this.watcher = watchConfig({
      dir: this.o.configDir,
      current: result.value,
      intervalMs: this.o.pollMs ?? 1000,
      onChange: (next) => this.reload(next),
      onInvalid: (err) => {
        this.lastReloadError = `${err.code}: ${err.message}`;
        this.metrics.reloads.inc({ result: "failed" });
        this.log.error(
          { event: "config-reload", result: "failed", code: err.code, err: err.message },
          "new config rejected, keeping the last good one",
        );
      },
    });
    this.log.info(
      {
        event: "started",
        relay: c.relay,
        generation: c.generation,
        configHash: result.value.hash,
        ports: this.ports(),
      },
      "relay started",
    );
    // a small queue is loaded before start() returns, as it always was; a large one keeps loading
    await Promise.race([this.recovered, new Promise((r) => setTimeout(r, RECOVERY_WAIT_MS).unref())]);
  }

  /**
   * The queued messages found at startup, handed to the scheduler all at once (oldest first, due
   * times staggered: backoff.ts), so the backlog goes out in order of due time whatever order the
   * files were read in. Mail accepted meanwhile is already queued and delivered.
   */
  private async recover(recovery: Promise<Recovered>): Promise<void> {
    await this.o.recoveryGate;
    const { envelopes, problems, damaged, keptAside } = await recovery;
    for (const p of problems)
      this.log.error({ event: "queue-error", err: p }, "unreadable envelope kept aside");
    // found now, and kept aside by an earlier start (until someone looks at them and deletes them)
    this.metrics.journalDamaged.set(new Set(damaged.map((d) => d.seq)).size + keptAside.length);
    for (const path of keptAside)
      this.log.warn({ event: "queue-error", segment: path }, "damaged journal segment kept aside");
    for (const d of damaged)
      this.log.error(
        { event: "queue-error", segment: d.path, from: d.from, to: d.to, err: damageText(d) },
        "damaged journal records lost, segment kept aside",
      );
    if (this.stopping) return;
    this.scheduler.addRecovered(envelopes);
    this.recovering = false;
    if (envelopes.length)
      this.log.info({ event: "queue-recovered", messages: envelopes.length }, "queue resumed");
  }

  private apply(l: LoadedConfig, first: boolean): void {
    const prev = first ? undefined : this.state.loaded;
    // what can throw is built before anything is replaced: a reload that fails changes nothing
    const state = inboundState(l);
    const resolver = makeResolver(l.config.dns.servers);
    // the pod's own addresses: a destination DNS chose must not be one of them
    const destinations = new DestinationFilter(l.config.delivery.allowedInternalCidrs, ownAddresses());
    this.state = state;
    this.resolver = resolver;
    this.destinations = destinations;
    this.metrics.configInfo.reset();
    this.metrics.configInfo.set({ hash: l.hash, generation: String(l.config.generation) }, 1);
    this.metrics.serverCertificate(fileOf(l, l.config.tls.certFile));
    for (const [policy, files] of l.heldForMaterial ?? [])
      this.log.warn(
        { event: "held", policy, code: "POLICY_PROBLEM", files },
        "policy held: this pod does not mount its material yet (an older pod template); its mail waits until the pod is replaced",
      );
    for (const [credential, err] of l.unusableCredentials)
      this.log.warn(
        { event: "credential-unusable", credential, code: "CREDENTIAL_INVALID", err },
        "credential unusable: the mail of the policies using it is deferred, an inbound account logs nobody in",
      );
    if (!prev) return;
    const c = l.config;
    const p = prev.config;
    if (
      JSON.stringify(p.listeners) !== JSON.stringify(c.listeners) ||
      JSON.stringify(p.admin) !== JSON.stringify(c.admin) ||
      p.queue.dir !== c.queue.dir
    )
      this.log.warn(
        {
          event: "config-reload",
          note: "listener, admin or queue.dir changes take effect at the next restart",
        },
        "restart needed for some changes",
      );
    if (c.inbound.stopped && !p.inbound.stopped) this.listeners.inboundStopped();
    const cert = fileOf(l, c.tls.certFile);
    const key = fileOf(l, c.tls.keyFile);
    if (!cert.equals(fileOf(prev, p.tls.certFile)) || !key.equals(fileOf(prev, p.tls.keyFile))) {
      this.listeners.updateCertificate(cert, key);
      this.log.info({ event: "certificate-reloaded" }, "server certificate reloaded");
    }
    this.own?.reloaded(prev);
  }

  private reload(next: LoadedConfig): void {
    try {
      this.apply(next, false);
    } catch (e) {
      // /status says so (lastReloadError): the operator does not read the pod as running it
      this.lastReloadError = `CONFIG_INVALID: ${errorMessage(e)}`;
      this.metrics.reloads.inc({ result: "failed" });
      this.log.error({ event: "config-reload", result: "failed", err: String(e) }, "reload failed");
      return;
    }
    this.lastReloadError = undefined;
    this.pool.clear(); // no connection set up under the old policies is reused
    this.metrics.reloads.inc({ result: "ok" });
    this.log.info(
      { event: "config-reload", result: "ok", generation: next.config.generation, configHash: next.hash },
      "config reloaded",
    );
    this.scheduler.retryAll();
  }

  /** Checks the config directory now (tests; the watcher does this on its own). */
  async checkConfig(): Promise<void> {
    await this.watcher?.check();
  }

  /** What loop detection compares next hops with: the listeners as bound, the host's addresses. */
  private selfView(): SelfView {
    const c = this.state.loaded.config;
    const listeners = [...(this.listeners?.bound ?? [])].map(([kind, port]) => ({
      host: c.listeners[kind].host,
      port,
    }));
    return {
      hostname: c.hostname,
      listeners,
      interfaceAddresses: ownAddresses(),
      proxyAddresses: c.selfAddresses,
    };
  }

  ports(): Record<string, number> {
    const out: Record<string, number> = Object.fromEntries(this.listeners?.bound ?? []);
    if (this.admin) out.admin = this.admin.port;
    const sts = this.own?.port();
    if (sts !== undefined) out.mtaSts = sts;
    return out;
  }

  status(): RelayStatus {
    const l = this.state.loaded;
    return {
      relay: l.config.relay,
      generation: l.config.generation,
      configHash: l.hash,
      loadedAt: l.loadedAt.toISOString(),
      ...(this.lastReloadError ? { lastReloadError: this.lastReloadError } : {}),
      listeners: Object.fromEntries(this.listeners?.bound ?? []),
      queue: {
        depth: this.scheduler?.depth() ?? 0,
        oldestAgeSeconds: this.scheduler?.oldestAgeSeconds() ?? 0,
      },
      policies: this.figures.snapshot(),
      ...this.tlsWatchStatus(),
      ...this.stsStatus(),
      ...(this.receipts ? { receipts: this.receipts.status() } : {}),
      ...(l.config.ownDomains?.tlsRpt ? { tlsRptReceived: this.own.receiver.figures.snapshot() } : {}),
      ...(this.drainer ? { draining: true, drain: this.drainer.status() } : {}),
      ...(this.listeners?.stopped() ? { stopped: true } : {}),
      ...(this.recovering ? { recovering: true } : {}),
    };
  }

  private tlsWatchStatus(): Pick<RelayStatus, "audit" | "partnerCertificates" | "report" | "figuresOmitted"> {
    // within a byte budget, so no policy's figures make the answer too large for the operator to read
    return figuresWithinBudget({
      audit: this.audit?.snapshot() ?? {},
      partnerCertificates: this.certificates?.snapshot() ?? {},
      report: this.transit?.snapshot() ?? {},
    });
  }

  private stsStatus(): Pick<RelayStatus, "mtaSts"> {
    const problems = this.mtaSts?.fetchProblems() ?? [];
    return problems.length ? { mtaSts: { failing: problems.length, domains: problems.slice(-20) } } : {};
  }

  /** A message was queued by the inbound listeners: a fleet peer's handover keeps its queue time. */
  private queued(env: Envelope): void {
    this.scheduler.add(env);
  }

  /**
   * Scale-down drain (relay/queue/drain.ts): stops accepting, then hands the queue over to
   * queue.handover or delivers it normally, until empty or `deadlineMs` passes. Idempotent.
   */
  drain(o: { deadlineMs?: number } = {}): Promise<DrainStatus> {
    this.drainer ??= new Drain({
      queue: this.scheduler,
      spool: this.spool,
      log: this.log,
      stopAccepting: async () => {
        await this.listeners.close(this.o.graceMs ?? 20_000);
        this.listening = false;
      },
      handover: () => this.state.loaded.config.queue.handover,
      ehloName: () => this.state.loaded.config.hostname,
      key: () => Promise.resolve(fleetKeyOf(this.state.loaded)),
      fleetCertificate: () => this.state.loaded.files.get(this.state.loaded.config.tls.certFile),
      carriedSts: (env, domains) => this.mtaSts?.carry(domains, env.mtaSts) ?? Promise.resolve([]),
      graceMs: this.o.graceMs ?? 20_000,
    });
    // the whole queue is handed over: the backlog found at startup is in the scheduler first
    const drainer = this.drainer;
    return this.recovered.then(() => drainer.run(o.deadlineMs ?? 10 * 60_000));
  }

  /** MTA-STS: cached policies refreshed before they expire (checked hourly and at start). */
  private startStsRefresh(sts: MtaSts): void {
    const refresher = new StsRefresher(sts, Date.now, (reports: RefreshReport[]) => {
      for (const r of reports) {
        // RFC 8461 section 3.3: a refresh that did not get through is an alert, unless the cached
        // mode is none
        const alert = ["failed", "error", "kept-same-id"].includes(r.outcome) && r.cachedMode !== "none";
        this.log[alert ? "warn" : "info"]({ event: "mta-sts-refresh", ...r }, `MTA-STS refresh ${r.outcome}`);
      }
    });
    const tick = (): void => void (this.stopping ? undefined : refresher.tick().catch(() => undefined));
    const timer = setInterval(tick, 3_600_000);
    timer.unref();
    tick();
    this.stsRefresh = timer;
  }

  /** TLS-RPT: sends each finished day's reports once (checked hourly and at start). */
  private startTlsRpt(store: TlsRptStore, spool: Spool): void {
    this.tlsRpt = startTlsRptReporting({
      store,
      spool,
      queue: this.scheduler,
      log: this.log,
      loaded: () => this.state.loaded,
      dns: () => this.resolver,
      destinations: () => this.destinations,
      stopping: () => this.stopping !== undefined,
    });
  }

  /** Builds and sends the TLS-RPT reports of one UTC day (YYYY-MM-DD) now, and marks it sent. */
  async sendTlsReports(day: string): Promise<SentReport[]> {
    if (!this.tlsRpt) return [];
    return this.tlsRpt.reporter.day(day);
  }

  /** The queue volume's reserve under the config loaded now (relay/queue/space-reserve.ts). */
  private reserve(): number {
    return configuredReserve(this.state.loaded.config);
  }

  /**
   * At each reading of the queue volume's free space (once a second), and at a refusal of new mail
   * for the reserve: logs entering or leaving it, once per change.
   */
  private watchReserve(refused = false): void {
    if (!this.spool) return; // the first reading, at the spool's opening
    // a refusal logs entering at once; only a reading (after a second without one) logs leaving
    if (refused && this.inReserve) return;
    const reserve = this.reserve();
    const now = refused || this.spool.withinReserve(reserve);
    if (now === this.inReserve) return;
    this.inReserve = now;
    const figures = { event: "queue-reserve", freeBytes: this.spool.space.freeBytes, reserveBytes: reserve };
    if (now)
      this.log.warn(
        { ...figures, state: "entered" },
        "queue volume within its reserve: new mail refused (452 4.3.1) while deliveries, DSNs and the queue's records still write",
      );
    else
      this.log.info(
        { ...figures, state: "left" },
        "queue volume out of its reserve: new mail accepted again",
      );
  }

  /** Graceful shutdown: stop accepting, let sessions and deliveries finish (grace), close. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const grace = this.o.graceMs ?? 20_000;
      this.watcher?.close();
      if (this.tlsRpt) clearInterval(this.tlsRpt.timer);
      if (this.stsRefresh) clearInterval(this.stsRefresh);
      this.log.info({ event: "stopping", graceMs: grace }, "stopping");
      await Promise.all([this.listeners?.close(grace), this.scheduler?.stop(grace)]);
      await this.receipts?.close(); // signs the head
      await Promise.all([this.audit?.flush(), this.certificates?.flush(), this.transit?.flush()]);
      await this.spool?.close();
      this.listening = false;
      this.pool.clear();
      const admin = this.admin?.server;
      const closed = new Promise<void>((r) => (admin ? admin.close(() => r()) : r()));
      admin?.closeAllConnections();
      await closed;
      await this.own?.close();
      this.log.info({ event: "stopped" }, "stopped");
    })();
    return this.stopping;
  }
}
