// Per-session budgets of the inbound listeners (issue 22 finding 1): nothing a client sends may
// grow the relay's memory for as long as its session lasts. A session is closed with 421 4.7.0
//  - after `hardErrorLimit` error replies (like Postfix's smtpd_hard_error_limit, default 20):
//    every reply >= 400 counts, the relay's own refusals and smtp-server's (503 bad sequence,
//    501 syntax, ...), except the 452 4.5.3 "too many recipients" a client is told when it goes
//    past maxRecipients (Postfix's smtpd_recipient_limit: it is the normal way to split a long
//    recipient list over several transactions) and the 421 that closes anyway;
//  - after `maxCommandsPerSession` commands of any kind (smtp-server's own cap on commands from
//    unauthenticated clients is off under authOptional, and a client that makes no errors could
//    otherwise talk for the whole session time limit).
// Pure counting; relay/inbound/limits.ts applies it to smtp-server's connections.
import type { Reply } from "./rules.js";

export interface SessionLimits {
  hardErrorLimit: number;
  maxCommandsPerSession: number;
}

export const TOO_MANY_ERRORS: Reply = { code: 421, text: "4.7.0 Too many errors, closing connection" };
export const TOO_MANY_COMMANDS: Reply = { code: 421, text: "4.7.0 Too many commands, closing connection" };

/** Whether a reply the server sends counts toward the hard error limit. */
export function countsAsError(code: number, text: string): boolean {
  if (code < 400 || code === 421) return false;
  return !(code === 452 && text.startsWith("4.5.3 "));
}

/** The counters of one session. */
export class SessionBudget {
  private errors = 0;
  private commands = 0;

  /** A command arrived: the 421 that ends the session once the cap is passed. */
  command(l: SessionLimits): Reply | undefined {
    return ++this.commands > l.maxCommandsPerSession ? TOO_MANY_COMMANDS : undefined;
  }

  /** The server sent `code text`: the 421 that ends the session once the error limit is reached. */
  reply(code: number, text: string, l: SessionLimits): Reply | undefined {
    if (!countsAsError(code, text)) return undefined;
    return ++this.errors >= l.hardErrorLimit ? TOO_MANY_ERRORS : undefined;
  }
}

/** At most `max` entries of a list kept for a log line, and how many there were in all. */
export class BoundedList<T> {
  readonly items: T[] = [];
  count = 0;

  constructor(private readonly max: number) {}

  push(item: T): void {
    this.count++;
    if (this.items.length < this.max) this.items.push(item);
  }
}
