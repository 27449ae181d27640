// The text log format (relay/log.ts, `--log-format text`): every record is one line, `<time> <level>
// <component> <event>: <msg> key=value...`, values with spaces or quotes JSON-quoted so a line splits
// unambiguously; a delivery line is the Postfix-like one (relay/delivery-log.ts); nothing is lost
// when pino hands over several records at once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger, textDestination, textLine } from "../../relay/log.js";

describe("text log format", () => {
  it("a record: time, level, component, event, message, then key=value with quoting", () => {
    const line = textLine({
      level: 60,
      time: Date.UTC(2026, 11, 4, 10, 0, 0),
      component: "relay",
      event: "start-failed",
      msg: "relay failed to start",
      err: 'config /x: CONFIG_UNREADABLE: "config.json" missing',
      ports: { smtp: 25 },
      attempt: 2,
    });
    assert.equal(
      line,
      '2026-12-04T10:00:00.000Z fatal relay start-failed: relay failed to start err="config /x: CONFIG_UNREADABLE: \\"config.json\\" missing" ports={"smtp":25} attempt=2',
    );
  });

  it("a delivery record is the Postfix-like line; passwords stay redacted", () => {
    const out: string[] = [];
    const log = createLogger(textDestination({ write: (s: string) => out.push(s) }), "info", "json");
    log.info(
      {
        event: "recipient",
        queueId: "0190ABC",
        from: "a@x.test",
        to: "b@y.test",
        size: 10,
        relay: "mx.y.test[192.0.2.1]:25",
        delay: 1.5,
        delays: { beforeQueue: 0.1, inQueue: 0.2, connection: 0.7, transmission: 0.5 },
        dsn: "2.0.0",
        status: "sent",
        code: "DELIVERED",
        response: "250 2.0.0 Ok",
        attempt: 0,
        tls: { policy: "p/y", mode: "verify", verified: true, version: "TLSv1.3" },
      },
      "delivery sent",
    );
    log.info({ event: "auth", password: "hunter2" }, "login");
    assert.equal(out.length, 2);
    assert.match(
      out[0]!,
      /^\S+ info relay recipient: 0190ABC: to=<b@y\.test>, from=<a@x\.test>, size=10, relay=mx\.y\.test\[192\.0\.2\.1\]:25, delay=1\.5, delays=0\.1\/0\.2\/0\.7\/0\.5, dsn=2\.0\.0, attempt=0, code=DELIVERED, policy=p\/y, mode=verify, tls=TLSv1\.3, verified=yes, status=sent \(250 2\.0\.0 Ok\)\n$/,
    );
    assert.doesNotMatch(out[1]!, /hunter2/);
    assert.match(out[1]!, /password=\[redacted\]/);
  });

  it("text from outside can neither end the line nor forge a field: quoted, and JSON.parse gives it back", () => {
    const evil =
      "x\r\n2026-01-01T00:00:00.000Z info relay recipient: F: to=<a@b>, status=sent (250 ok)\u2028\u0085";
    const line = textLine({
      level: 30,
      time: 0,
      component: "relay",
      msg: `reply ${evil}`,
      reply: evil,
      peer: { host: evil, port: 25 },
    });
    assert.equal(line.split("\n").length, 1);
    // eslint-disable-next-line no-control-regex -- what must not reach the log
    assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f\u2028\u2029]/);
    assert.doesNotMatch(line, /status=sent|, to=/);
    const m = /^\S+ info relay: ("(?:[^"\\]|\\.)*") reply=("(?:[^"\\]|\\.)*") peer=(\{.*\})$/.exec(line);
    assert.ok(m, line);
    assert.equal(JSON.parse(m[1]!), `reply ${evil}`);
    assert.equal(JSON.parse(m[2]!), evil);
    assert.deepEqual(JSON.parse(m[3]!), { host: evil, port: 25 });
  });
});
