// The API writes durations and sizes as Kubernetes users do (60s, 120h, 50Mi); the relay's
// configuration counts seconds and bytes. These are the conversions, for the operator's compiler.
import { DURATION_PATTERN, QUANTITY_PATTERN } from "./quantities.js";

const SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/** Seconds in a duration like 60s, 1h30m or 120h (the API's format; validated by the apiserver). */
export function durationSeconds(text: string): number {
  if (!DURATION_PATTERN.test(text))
    throw new Error(`invalid duration ${JSON.stringify(text)}: use e.g. 60s, 15m, 1h`);
  let total = 0;
  for (const [, n, unit] of text.matchAll(/([0-9]+)(ms|s|m|h)/g)) total += Number(n) * SECONDS[unit!]!;
  return total;
}

const FACTOR: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** Bytes in a quantity like 50Mi or 10G (rounded up, as Kubernetes rounds quantities). */
export function quantityBytes(text: string): number {
  if (!QUANTITY_PATTERN.test(text))
    throw new Error(`invalid size ${JSON.stringify(text)}: use e.g. 50Mi, 10Gi`);
  const [, number, suffix = ""] = /^([0-9.]+)(.*)$/.exec(text)!;
  return Math.ceil(Number(number) * FACTOR[suffix]!);
}
