// What the kernel still holds of a server's sockets to one client: `ss` on the server's port, every
// TCP state (orphaned FIN-WAIT sockets included, which no process counts), with their send queues.
// The unread-replies attack tests read it (no time asserted: the bytes left are the measure).
import { execFileSync } from "node:child_process";

/** The sockets from local `port` to `client`, in any state, and the bytes in their send queues. */
export function serverSockets(port: number, client: string): { states: string[]; sendQ: number } {
  const out = execFileSync("ss", ["-tanH", `( sport = :${port} )`], { encoding: "utf8" });
  const states: string[] = [];
  let sendQ = 0;
  for (const line of out.split("\n")) {
    const c = line.trim().split(/\s+/);
    if (c.length < 5 || !c[4]!.startsWith(`${client}:`)) continue;
    states.push(c[0]!);
    sendQ += Number(c[2]);
  }
  return { states, sendQ };
}
