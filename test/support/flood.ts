// A tenant's policy flood, as the config-fit attack tests write it: domain names gzip cannot shrink.
import { randomBytes } from "node:crypto";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A DNS label of `n` random [a-z0-9] characters starting with a letter. */
export const randomLabel = (n: number): string =>
  "q" + [...randomBytes(n - 1)].map((x) => ALPHABET[x % ALPHABET.length]).join("");

/** A policy's worth of them: 64 domains of three 62-character random labels (196 characters each). */
export const floodDomains = (): string[] =>
  Array.from({ length: 64 }, () => `${randomLabel(62)}.${randomLabel(62)}.${randomLabel(62)}.example`);
