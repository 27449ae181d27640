// Durations, sizes and CPU amounts as Kubernetes users write them (60s, 512Mi, 100m): the patterns
// (units.ts converts them for the relay's configuration) and the field constructors.
import { z } from "zod";

/** Go duration as CEL's duration() reads it, units ms, s, m, h: 60s, 15m, 1h30m, 120h. */
export const DURATION_PATTERN = /^([0-9]+(ms|s|m|h))+$/;
/** Kubernetes quantity without exponent: 512Mi, 10Gi, 50M, 1000. */
export const QUANTITY_PATTERN = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

export const duration = (description: string) =>
  z
    .string()
    .max(32)
    .regex(DURATION_PATTERN, "must be a duration like 60s, 15m, 1h or 120h")
    .describe(description);

export const quantity = (description: string) =>
  z.string().max(32).regex(QUANTITY_PATTERN, "must be a size like 512Mi or 10Gi").describe(description);

/** A CPU amount as Kubernetes writes it: cores (1, 0.5) or millicores (100m). */
export const CPU_PATTERN = /^[0-9]+(\.[0-9]+)?m?$/;

export const cpuQuantity = (description: string) =>
  z.string().max(32).regex(CPU_PATTERN, "must be a CPU amount like 100m, 0.5 or 2").describe(description);
