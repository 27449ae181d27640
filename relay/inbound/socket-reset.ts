// How an inbound SMTP connection's TCP socket is closed: with a reset (RST). A client that pipelines
// commands and never reads a reply fills the relay's send queue; closed with a FIN (smtp-server ends a
// session so, and destroys the socket five seconds later if the client keeps its end open), the
// kernel kept those replies in an orphaned FIN-WAIT-1 socket for as long as the client held its end
// open without reading, counted by nothing of the relay (the session had closed, its per-address
// slot was free): the client opened the next sessions and stacked about a megabyte of the relay's
// memory per session (attack review, session 18: test/mail/attack-smtp-unread-replies.test.ts; the
// admin port's own, relay/net/http-limits.ts). On the wire this changes nothing for a client that
// reads: when the socket is closed after the client's FIN, everything the relay sent has been
// received (the kernel sends no RST then), and the half-close deadline passes only for a client that
// has not closed its end five seconds after the relay's 421 or 221.
import type { Socket } from "node:net";

/**
 * Makes the close of `socket` (an accepted TCP connection, whatever runs over it: smtp-server's
 * session, a TLS socket, whose destroy closes this one) a reset, which drops what the kernel still
 * holds for the client. A close for an error (the connection is gone) stays as it is.
 */
export function resetOnClose(socket: Socket): void {
  const destroy = socket.destroy.bind(socket);
  socket.destroy = (err?: Error): Socket => {
    socket.destroy = destroy;
    if (err || socket.destroyed) return destroy(err);
    try {
      return socket.resetAndDestroy();
    } catch {
      return destroy(); // not a TCP handle: closed as before
    }
  };
}
