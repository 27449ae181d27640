// Prometheus metrics of the operator (one registry per Operator instance, so tests can run several).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: "sealpost_operator_reconcile_total",
    help: "Reconciles by controller and result (success, error, requeue).",
    labelNames: ["controller", "result"] as const,
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: "sealpost_operator_reconcile_errors_total",
    help: "Failed reconciles by controller.",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: "sealpost_operator_reconcile_duration_seconds",
    help: "Reconcile duration by controller.",
    labelNames: ["controller"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: "sealpost_operator_workqueue_depth",
    help: "Keys waiting in the work queue by controller.",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });
  readonly apiRequests = new Counter({
    name: "sealpost_operator_api_requests_total",
    help: "Kubernetes API requests by method and status code.",
    labelNames: ["method", "code"] as const,
    registers: [this.registry],
  });
  readonly apiConnections = new Counter({
    name: "sealpost_operator_api_connections_total",
    help: "Connections opened to the Kubernetes API for requests (watches not counted); kept alive and reused.",
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: "sealpost_operator_leader",
    help: "1 while this process holds the leader lease.",
    registers: [this.registry],
  });

  constructor(defaults = false) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
  }
}
