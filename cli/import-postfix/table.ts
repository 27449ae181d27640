// Postfix lookup-table source files (postmap(1) "INPUT FILE FORMAT"), as `postmap` and `texthash:`
// read them: a logical line is "key whitespace value"; a line that starts with whitespace continues the
// previous logical line; empty lines, whitespace-only lines and lines whose first non-whitespace
// character is "#" are ignored (a "#" later in a line is data). Keys are case-insensitive (postmap
// folds them to lower case) and the first of two equal keys wins, as postmap's "duplicate entry"
// warning says. Written by hand: no npm package reads this format, and it is a dozen lines.
// test/unit/import-postfix.test.ts checks every fixture against the real `postmap -s`.

export interface TableEntry {
  /** The key, lower case. */
  key: string;
  /** The value, continuation lines joined with single spaces. */
  value: string;
  /** 1-based line number of the line that starts the entry. */
  line: number;
}

export interface TableProblem {
  line: number;
  message: string;
}

export interface Table {
  entries: TableEntry[];
  problems: TableProblem[];
}

export function parseTable(text: string): Table {
  const entries: TableEntry[] = [];
  const problems: TableProblem[] = [];
  const seen = new Map<string, number>();
  let current: { text: string; line: number } | undefined;

  const finish = () => {
    if (!current) return;
    const m = /^(\S+)\s+(.*\S)\s*$/s.exec(current.text);
    if (!m) {
      problems.push({
        line: current.line,
        message: `"${current.text.trim()}" has a key but no value: write "key value" on one line`,
      });
    } else {
      const key = m[1]!.toLowerCase();
      const value = m[2]!.replace(/\s+/g, " ");
      const first = seen.get(key);
      if (first !== undefined) {
        problems.push({
          line: current.line,
          message: `duplicate entry "${key}" (first on line ${first}); Postfix uses the first one, so does the importer`,
        });
      } else {
        seen.set(key, current.line);
        entries.push({ key, value, line: current.line });
      }
    }
    current = undefined;
  };

  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    if (/^\s/.test(raw)) {
      if (current) current.text += ` ${trimmed}`;
      else problems.push({ line: i + 1, message: "continuation line without a preceding entry" });
      return;
    }
    finish();
    current = { text: raw, line: i + 1 };
  });
  finish();
  return { entries, problems };
}

/** main.cf-style "name = value" settings (continuation lines as above), for `relayhost` and the like. */
export function parseMainCf(text: string): Map<string, { value: string; line: number }> {
  const out = new Map<string, { value: string; line: number }>();
  let current: { text: string; line: number } | undefined;
  const finish = () => {
    const m = current && /^([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$/s.exec(current.text);
    if (m && current) out.set(m[1]!, { value: m[2]!.replace(/\s+/g, " "), line: current.line });
    current = undefined;
  };
  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    if (/^\s/.test(raw) && current) {
      current.text += ` ${trimmed}`;
      return;
    }
    finish();
    current = { text: raw, line: i + 1 };
  });
  finish();
  return out;
}
