// A relay on loopback with the inbound accounts the AUTH attacks try (test/mail/attack-auth-*):
// "app", the organisation's relay-wide account (allowRelay), and, given a partner host, "partner", a
// partner's login that its policy binds to that host. Port 25 only in use; a sink behind it for every
// route. Sessions speak STARTTLS before any AUTH, as the relay requires.
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { rawSession, relayFixture, type RawSession, type RelayFixture } from "./relay.js";
import { startSink, type Sink } from "./sink.js";

export interface AuthRelay {
  f: RelayFixture;
  sink: Sink;
  /** A session from `from` (a loopback address), after EHLO, STARTTLS and EHLO again. */
  session(from: string, ehlo?: string): Promise<RawSession>;
  stop(): Promise<void>;
}

/** "AUTH PLAIN" with this authorization identity, login and password (a Buffer: its bytes as they are). */
export function plainAuth(authzid: string, authcid: string, password: string | Buffer): string {
  const token = Buffer.concat([Buffer.from(`${authzid}\0${authcid}\0`), Buffer.from(password)]);
  return `AUTH PLAIN ${token.toString("base64")}`;
}

function config(f: RelayFixture, sink: Sink, partnerHost: string | undefined): Partial<RelayConfigInput> {
  const hop = { host: "127.0.0.1", port: sink.port };
  return {
    listeners: {
      smtp: { port: f.ports.smtp, host: "127.0.0.1" },
      smtps: { port: f.ports.smtps, host: "127.0.0.1" },
      submission: { port: f.ports.submission, host: "127.0.0.1" },
    },
    inbound: { require: "none", relayFrom: [], localDomains: ["local.test"], internalNextHop: hop },
    credentials: {
      ...(partnerHost
        ? {
            "partner-in": {
              type: "password" as const,
              usage: "inbound" as const,
              username: "partner",
              passwordFile: "secrets/partner-in/password",
            },
          }
        : {}),
      // the organisation's own account: it may relay anywhere
      "app-in": {
        type: "password",
        usage: "inbound",
        username: "app",
        passwordFile: "secrets/app-in/password",
        allowRelay: true,
      },
    },
    policies: partnerHost
      ? [
          {
            name: "mail/partner",
            domains: ["partner.test"],
            outbound: { tls: { mode: "none" }, nextHop: hop },
            inbound: { hosts: [`${partnerHost}/32`], require: "tls+auth", credentials: ["partner-in"] },
          },
        ]
      : [],
    defaultOutbound: { tls: { mode: "none" }, nextHop: hop },
  };
}

/** Starts it: "app" logs in with `appPassword` (its Secret's bytes; app-pw), "partner" with partner-pw. */
export async function startAuthRelay(
  name: string,
  o: { partnerHost?: string; appPassword?: string | Buffer } = {},
): Promise<AuthRelay> {
  const f = await relayFixture(name);
  const sink = await startSink();
  await f.configure(config(f, sink, o.partnerHost), {
    files: {
      "secrets/app-in/password": o.appPassword ?? "app-pw",
      ...(o.partnerHost ? { "secrets/partner-in/password": "partner-pw" } : {}),
    },
  });
  await f.start();
  return {
    f,
    sink,
    async session(from, ehlo = "client.test") {
      const s = await rawSession(f.ports.smtp, { localAddress: from });
      await s.cmd(`EHLO ${ehlo}`);
      await s.starttls();
      await s.cmd(`EHLO ${ehlo}`);
      return s;
    },
    stop: () => f.stop(() => sink.close()),
  };
}
