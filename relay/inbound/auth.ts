// Inbound SMTP AUTH (PLAIN, LOGIN) against the config's inbound password credentials. Both the
// username and the password are compared in constant time (over sha256 digests, so the length of
// the secret does not leak either); every candidate credential is checked, no early exit.
import { createHash, timingSafeEqual } from "node:crypto";

export interface InboundAccount {
  name: string;
  username: string;
  password: string;
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

export function constantTimeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * The credential name that `username`/`password` authenticate as, or undefined. `allowed`
 * restricts the candidate accounts (a host rule's credentials); undefined allows every account.
 */
export function authenticate(
  accounts: readonly InboundAccount[],
  username: string,
  password: string,
  allowed?: readonly string[],
): string | undefined {
  // an empty (or white space) password never logs in, whatever an account holds (attack review,
  // session 6)
  if (password.trim() === "") return undefined;
  let match: string | undefined;
  for (const a of accounts) {
    const userOk = constantTimeEqual(a.username, username);
    const passOk = constantTimeEqual(a.password, password);
    if (userOk && passOk && match === undefined && (!allowed || allowed.includes(a.name))) match = a.name;
  }
  return match;
}
