// The connection bounds of the relay's HTTP servers (the admin port, the MTA-STS endpoint): at most
// `total` connections, `perClient` from one client (an IPv4 address, an IPv6 /64, as the SMTP side
// counts them: inbound/throttle.ts), and short header, request and keep-alive timeouts. Node's
// http server has none of these by default (a silent connection waits for headersTimeout, 60 s),
// so connections that never send a byte held the process's descriptors and memory: 20,000 idle
// connections from one client to the admin port left the SMTP listeners unable to accept and
// /readyz failing (attack review, session 11). And one request at a time per connection
// (oneAtATime): Node parses pipelined requests at once and keeps every reply until the client reads
// the ones before it, so 16 connections of pipelined GET /metrics that were never read held a
// gigabyte (the third review of these bounds).
import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Socket } from "node:net";
import { KeyCounts } from "../inbound/key-counts.js";
import { clientKey } from "../inbound/throttle.js";

export interface HttpLimits {
  /** Connections at once, every client together (Node's maxConnections: beyond it, closed at once). */
  total: number;
  /** Connections at once from one client; beyond it, closed at once. */
  perClient: number;
  /** The request's headers must arrive within this (ms). */
  headersMs: number;
  /** The whole request within this (ms). */
  requestMs: number;
  /** An idle kept-alive connection closes after this (ms). */
  keepAliveMs: number;
}

/** The client a connection counts for: its IPv4 address, or its IPv6 /64. */
export const httpClientOf = (address: string | undefined): string => clientKey(address ?? "", 64);

/** Applies `l` to `server` (before it listens). */
export function boundConnections(server: HttpServer | HttpsServer, l: HttpLimits): void {
  server.maxConnections = l.total;
  server.headersTimeout = l.headersMs;
  server.requestTimeout = l.requestMs;
  server.keepAliveTimeout = l.keepAliveMs;
  // the server's own closes of a connection it gave up on reset it (RST): a closed socket whose
  // replies the client never read stays in the kernel (FIN-WAIT-1, its send queue kept) and no longer
  // counts for its client, who opens another: 82 such sockets held 318 MB of one client's unread
  // /metrics replies (the fourth review). An idle keep-alive connection (its replies were read) or a
  // request that came too slowly or malformed loses nothing by a reset.
  server.on("timeout", (socket: Socket) => reset(socket));
  server.on("clientError", (_err: Error, socket: Socket) => reset(socket));
  const open = new KeyCounts<string>();
  server.on("connection", (socket: Socket) => {
    const client = httpClientOf(socket.remoteAddress);
    if (open.get(client) >= l.perClient) {
      socket.destroy();
      return;
    }
    open.add(client);
    socket.once("close", () => open.remove(client));
  });
}

/**
 * Closes `socket` with a reset (RST: the kernel drops what it still holds for the client); a TLS
 * socket, whose handle is not the TCP one, is destroyed as before.
 */
function reset(socket: Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** The connections with a request being answered (oneAtATime). */
const answering = new WeakSet<Socket>();

/**
 * Admits a request when its connection has no other being answered; otherwise (a pipelined request
 * that came before the previous reply was sent) closes the connection and returns false: do not
 * answer it. Kubelet, Prometheus and the operator never pipeline.
 */
export function oneAtATime(req: IncomingMessage, res: ServerResponse): boolean {
  const socket = req.socket;
  if (answering.has(socket)) {
    reset(socket); // its unread replies go with it (see boundConnections)
    return false;
  }
  answering.add(socket);
  // "close": the reply was sent, or the connection ended before it
  res.once("close", () => answering.delete(socket));
  return true;
}
