// A man in the middle for SMTP on loopback, like a firewall doing "ESMTP inspection": in front of a
// real server it hides STARTTLS from the EHLO reply (strip), or answers STARTTLS itself with 454
// (reject-starttls), or passes everything through (pass). It records the clear-text part of every
// session, so a test can prove that a client refusing to downgrade never sent MAIL/DATA/AUTH in clear.
import { connect, createServer, type Socket } from "node:net";

export type StripMode = "strip" | "reject-starttls" | "pass";

export interface StripProxyOptions {
  upstream: { host: string; port: number };
  /** Default "strip". */
  mode?: StripMode;
}

export interface ProxyLine {
  /** Which connection (1, 2, ...). */
  session: number;
  /** "client" = sent by the client to the server, "server" = the other way (as the client saw it). */
  from: "client" | "server";
  line: string;
}

export interface StripProxy {
  host: string;
  port: number;
  /** The mode for new sessions; may be changed between tests. */
  mode: StripMode;
  /** Clear-text lines of all sessions, in order (what passes inside TLS is not readable, so not here). */
  transcript: ProxyLine[];
  /** Sessions accepted so far. */
  readonly sessions: number;
  /** The client sent MAIL FROM in clear. */
  readonly sawMailFrom: boolean;
  /** The client sent DATA or BDAT in clear. */
  readonly sawData: boolean;
  /** The client sent AUTH in clear. */
  readonly sawAuth: boolean;
  /** A STARTTLS got through and the server agreed (220): the rest of that session is TLS. */
  readonly tlsStarted: boolean;
  /** The client's commands in clear (verbs only, e.g. ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]). */
  commands(session?: number): string[];
  stop(): Promise<void>;
}

export async function startStripProxy(opts: StripProxyOptions): Promise<StripProxy> {
  const transcript: ProxyLine[] = [];
  const open = new Set<Socket>();
  let sessions = 0;
  let tlsStarted = false;

  const server = createServer((client) => {
    const session = ++sessions;
    const mode = proxy.mode;
    const upstream = connect(opts.upstream.port, opts.upstream.host);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on("close", () => open.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());

    // Line-by-line while the session is in clear; raw bytes once TLS has started.
    let raw = false;
    let inBody = false; // between the server's 354 and the client's lone "."
    let starttlsForwarded = false;
    let fromClient = "";
    let fromServer = "";
    const record = (from: ProxyLine["from"], line: string) => transcript.push({ session, from, line });

    client.on("data", (chunk: Buffer) => {
      if (raw) return void upstream.write(chunk);
      fromClient += chunk.toString("latin1");
      let i: number;
      while (!raw && (i = fromClient.indexOf("\n")) >= 0) {
        const line = fromClient.slice(0, i + 1);
        fromClient = fromClient.slice(i + 1);
        const text = line.replace(/\r?\n$/, "");
        record("client", text);
        if (inBody) {
          if (text === ".") inBody = false;
          upstream.write(line, "latin1");
          continue;
        }
        if (/^STARTTLS\s*$/i.test(text)) {
          if (mode === "reject-starttls") {
            const reply = "454 4.7.0 TLS not available due to local problem";
            record("server", reply);
            client.write(reply + "\r\n");
            continue;
          }
          if (mode === "strip") {
            // not advertised, so the "server" does not know the command
            const reply = "502 5.5.1 Error: command not implemented";
            record("server", reply);
            client.write(reply + "\r\n");
            continue;
          }
          starttlsForwarded = true;
        }
        upstream.write(line, "latin1");
      }
    });

    upstream.on("data", (chunk: Buffer) => {
      if (raw) return void client.write(chunk);
      fromServer += chunk.toString("latin1");
      let out = "";
      let i: number;
      while ((i = fromServer.indexOf("\n")) >= 0) {
        let line = fromServer.slice(0, i + 1);
        fromServer = fromServer.slice(i + 1);
        // Keep the reply's shape (continuation or last line) and only blank the keyword, as
        // stripping firewalls do ("250-XXXXXXXA").
        if (mode === "strip" && /^250[ -]STARTTLS\s*$/i.test(line.trimEnd()))
          line = line.replace(/STARTTLS/i, "XXXXXXXA");
        record("server", line.replace(/\r?\n$/, ""));
        out += line;
        if (/^354[ ]/.test(line)) inBody = true;
        if (starttlsForwarded && /^\d{3} /.test(line)) {
          starttlsForwarded = false;
          if (line.startsWith("220")) {
            // from here on both directions are TLS records: stop parsing, pass bytes through
            raw = true;
            tlsStarted = true;
            out += fromServer;
            fromServer = "";
            if (fromClient) upstream.write(fromClient, "latin1");
            fromClient = "";
            break;
          }
        }
      }
      client.write(out, "latin1");
    });
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? addr.port : 0);
    });
  });

  const verbs = (session?: number) =>
    clientCommands(transcript)
      .filter((l) => session === undefined || l.session === session)
      .map((l) => /^([A-Za-z]+)/.exec(l.line)?.[1]?.toUpperCase() ?? "");
  const saw = (re: RegExp) => clientCommands(transcript).some((l) => re.test(l.line));

  const proxy: StripProxy = {
    host: "127.0.0.1",
    port,
    mode: opts.mode ?? "strip",
    transcript,
    get sessions() {
      return sessions;
    },
    get sawMailFrom() {
      return saw(/^MAIL FROM:/i);
    },
    get sawData() {
      return saw(/^(DATA|BDAT)\b/i);
    },
    get sawAuth() {
      return saw(/^AUTH\b/i);
    },
    get tlsStarted() {
      return tlsStarted;
    },
    commands: verbs,
    async stop() {
      for (const s of open) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return proxy;
}

// Client lines that were commands (message body lines are excluded: a body may well say "DATA").
function clientCommands(transcript: ProxyLine[]): ProxyLine[] {
  const out: ProxyLine[] = [];
  const inBody = new Map<number, boolean>();
  for (const l of transcript) {
    if (l.from === "server") {
      if (/^354[ ]/.test(l.line)) inBody.set(l.session, true);
      continue;
    }
    if (inBody.get(l.session)) {
      if (l.line === ".") inBody.set(l.session, false);
      continue;
    }
    out.push(l);
  }
  return out;
}
