// Child process for the MTA-STS cache's kill -9 test (test/unit/relay-mta-sts-refresh.test.ts): the
// cache at argv[2] is given policy after policy for partner.test, each under a new id (`p<n>`, with
// n mx lines so every one has its own size), through MtaSts.lookup as a delivery would; "ok <n>" is
// printed once the lookup that wrote policy n resolved. Runs until killed.
import { pathToFileURL } from "node:url";
import { ok } from "../../relay/contract/failure.js";
import { MtaSts } from "../../relay/outbound/mta-sts.js";

let n = 0;
const sts = new MtaSts({
  dns: () => ({
    resolveMx: () => Promise.reject(new Error("unused")),
    resolve4: () => Promise.resolve(["192.0.2.1"]),
    resolve6: () => Promise.resolve([]),
    resolveTxt: () => Promise.resolve([[`v=STSv1; id=p${n};`]]),
  }),
  cacheDir: () => process.argv[2]!,
  ca: () => undefined,
  httpsPort: () => 443,
  fetch: () => Promise.resolve(ok(stsCachePolicy(n))),
});

/** Policy n as the writer stores it (the test checks the cache holds exactly one of these). */
export function stsCachePolicy(i: number) {
  return {
    version: "STSv1" as const,
    mode: "enforce" as const,
    mx: Array.from({ length: 1 + (i % 300) }, (_, k) => `mx${k}.partner${i}.test`),
    maxAge: 86_400,
  };
}

// run as the child (not when the test imports stsCachePolicy)
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (;;) {
    n++;
    const l = await sts.lookup("partner.test");
    if (l.source !== "fetched") throw new Error(`policy ${n} not fetched: ${JSON.stringify(l)}`);
    process.stdout.write(`ok ${n}\n`);
  }
}
