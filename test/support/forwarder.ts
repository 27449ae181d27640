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

export async function startForwarder(to: number, host = "127.0.0.1"): Promise<Forwarder> {
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
  const port = await new Promise<number>((resolve) =>
    server.listen(0, host, () => resolve((server.address() as { port: number }).port)),
  );
  return {
    server,
    port,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
