// A TCP forwarder on this machine: connections to host:<port> are piped to 127.0.0.1:`to`. The mail
// loop tests use it as a next hop that is the relay under another address (a forwarder the relay
// cannot see through, or kube-proxy in front of the relay's Service address).
import { connect, createServer, type Server, type Socket } from "node:net";

export interface Forwarder {
  server: Server;
  port: number;
  /** Open sockets (both sides), to destroy at the end. */
  sockets: Set<Socket>;
  close(): Promise<void>;
}

/** Listens on host:`port` (0: any free port) and forwards to 127.0.0.1:`to`. */
export async function startForwarder(to: number, host = "127.0.0.1", port = 0): Promise<Forwarder> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const up = connect({ host: "127.0.0.1", port: to });
    for (const s of [client, up]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => (client.destroy(), up.destroy()));
    }
    client.pipe(up);
    up.pipe(client);
  });
  const bound = await new Promise<number>((resolve) =>
    server.listen(port, host, () => resolve((server.address() as { port: number }).port)),
  );
  return {
    server,
    port: bound,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
