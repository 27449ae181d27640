// How long a new connection waits before its greeting (the pregreet test). smtp-server waits a
// fixed 100 ms for every client (`SMTPConnection#init`: "a small delay for detecting early talkers";
// a client that talks first gets `421 You talk too soon`), not configurable. Postfix's postscreen,
// which runs the same test, skips it for clients on its permanent allowlist
// (`postscreen_access_list = permit_mynetworks`): the relay's own applications are not spam bots, and
// on a one-session-at-a-time application the pause is most of the time a session takes (issue 18:
// C=1 throughput half of Postfix's). So here: a client in `inbound.relayFrom` (the networks the relay
// already trusts to relay without logging in) is greeted at once; every other client, on every
// listener, still waits PREGREET_WAIT_MS and gets 421 if it talks first.
// `SMTPConnection#init` is replaced by the same function with the wait taken from the server option
// GREET_WAIT_OPTION; installed only on the smtp-server version it was copied from (another version
// keeps its own, waiting for everybody: slower, never weaker).
import { createRequire } from "node:module";
import { SMTPConnection } from "smtp-server/lib/smtp-connection.js";

/** The smtp-server release whose `init` this file reproduces. */
export const INIT_COPIED_FROM = "3.21.6";

/** smtp-server's own pause: an untrusted client waits as long as before. */
export const PREGREET_WAIT_MS = 100;

/**
 * The SMTPServer option through which a server tells its connections how long to wait before the
 * greeting, from the client's address (read per connection, so a reload applies to new ones).
 */
export const GREET_WAIT_OPTION = "sealpostGreetWait";

/** The pregreet wait for a client: none for a trusted network, smtp-server's pause otherwise. */
export function greetWaitMs(trusted: boolean): number {
  return trusted ? 0 : PREGREET_WAIT_MS;
}

interface InitInternals {
  remoteAddress: string;
  _server: { options: Record<string, unknown>; connections: Set<unknown> };
  _setListeners(callback: () => void): void;
  connectionReady(): void;
  send(code: number, data?: string, context?: unknown): void;
  name: string;
}

/** smtp-server 3.21.6's SMTPConnection#init, with the wait from GREET_WAIT_OPTION. */
function init(this: InitInternals): void {
  this._setListeners(() => {
    const o = this._server.options;
    if (typeof o.maxClients === "number" && o.maxClients && this._server.connections.size > o.maxClients) {
      return this.send(421, this.name + " Too many connected clients, try again in a moment", false);
    }
    const waitOf = o[GREET_WAIT_OPTION];
    const wait =
      typeof waitOf === "function"
        ? (waitOf as (ip: string) => number)(this.remoteAddress)
        : PREGREET_WAIT_MS;
    // no wait: ready before any byte of the client's can be read (those arrive in a later turn)
    if (wait <= 0) return this.connectionReady();
    const readyTimer = setTimeout(() => this.connectionReady(), wait);
    readyTimer.unref();
  });
}

const PATCHED = Symbol.for("sealpost.greetWait");

/** Installs the per-client pregreet wait on smtp-server's connections (once; only on INIT_COPIED_FROM). */
export function installGreetWait(): boolean {
  const proto = SMTPConnection.prototype as unknown as Record<symbol, boolean> & { init: unknown };
  if (proto[PATCHED]) return true;
  const version = (createRequire(import.meta.url)("smtp-server/package.json") as { version: string }).version;
  if (version !== INIT_COPIED_FROM || typeof proto.init !== "function") return false;
  proto.init = init;
  proto[PATCHED] = true;
  return true;
}
