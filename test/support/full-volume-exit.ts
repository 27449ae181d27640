// Child process for test/unit/relay-journal.test.ts: a delivered message's done record fails on a
// full volume (ENOSPC) and stays on the journal's retry list, its timer set; then nothing more
// happens. The process must exit on its own: the retry timer never keeps a stopping relay alive.
import { fullableSpool, queued } from "./full-volume-spool.js";

const { spool, full } = await fullableSpool(process.argv[2]!);
const env = await queued(spool, "delivered while the volume is full");
await queued(spool, "keeps the segment");
full.on = true;
await spool.remove(env.id, { delivered: true });
await spool.flush().then(
  () => process.stdout.write("written\n"),
  () => process.stdout.write("retrying\n"),
);
