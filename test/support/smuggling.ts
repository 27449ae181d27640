// SMTP smuggling's pieces for the hardening tests (test/mail/hardening-*.test.ts): the bare line
// breaks around a dot a lenient server takes for the end of DATA, and the commands an attacker hides
// after one, and a message cut into chunks at given sizes.

/** Commands smuggled after a false end of DATA. */
export const SMUGGLED =
  "MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@local.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n";

/** The false ends of DATA (name, bytes): a dot between line breaks of which one is bare. */
export const FALSE_ENDS = [
  ["<LF>.<LF>", "\n.\n"],
  ["<CR>.<CR>", "\r.\r"],
  ["<LF>.<CR><LF>", "\n.\r\n"],
  ["<CR><LF>.<LF>", "\r\n.\n"],
  ["<CR><LF>.<CR>", "\r\n.\r"],
  ["<CR>.<CR><LF>", "\r.\r\n"],
] as const;

/** `b` in chunks of the given sizes (the last one whatever is left), none empty. */
export function cut(b: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const n of sizes) {
    if (at >= b.length) break;
    out.push(b.subarray(at, at + n));
    at += n;
  }
  if (at < b.length) out.push(b.subarray(at));
  return out;
}
