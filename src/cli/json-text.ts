/**
 * JSON read from files the user wrote: a syntax error is reported by line and column (V8 gives a byte
 * position at best, and for some errors nothing at all).
 */

/** A syntax error in a JSON text, located at 1-based `line` and `column`. */
export class JsonSyntaxError extends Error {
  constructor(readonly line: number, readonly column: number, detail: string) {
    super(`line ${line} column ${column}: ${detail}`);
  }
}

/** JSON.parse, with the position of a syntax error as line and column. Throws JsonSyntaxError. */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const offset = firstErrorOffset(text);
    const { line, column } = lineColumn(text, offset);
    const found = offset >= text.length ? 'the text ends too early' : `unexpected ${JSON.stringify(text[offset])}`;
    throw new JsonSyntaxError(line, column, `${found} (${(err as Error).message})`);
  }
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

/** The offset of the first character a strict JSON parser rejects (text.length when the text ends too early). */
export function firstErrorOffset(text: string): number {
  let i = 0;
  const ws = (): void => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  class Stop extends Error {}
  const stop = (): never => { throw new Stop(); };
  const expect = (s: string): void => {
    for (const ch of s) {
      if (text[i] !== ch) stop();
      i++;
    }
  };
  const string = (): void => {
    expect('"');
    for (;;) {
      if (i >= text.length) stop();
      const ch = text[i];
      if (ch === '"') { i++; return; }
      if (ch < ' ') stop();
      if (ch === '\\') {
        i++;
        if (text[i] === 'u') {
          i++;
          for (let k = 0; k < 4; k++, i++) if (!/[0-9a-fA-F]/.test(text[i] ?? '')) stop();
          continue;
        }
        if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) stop();
      }
      i++;
    }
  };
  const number = (): void => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) stop();
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++; ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws(); string(); ws(); expect(':'); value(); ws();
        if (text[i] === ',') { i++; continue; }
        expect('}');
        return;
      }
    }
    if (ch === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        expect(']');
        return;
      }
    }
    if (ch === '"') return string();
    if (ch === 't') return expect('true');
    if (ch === 'f') return expect('false');
    if (ch === 'n') return expect('null');
    return number();
  };
  try {
    value();
    ws();
    return i < text.length ? i : text.length;
  } catch (err) {
    if (err instanceof Stop) return Math.min(i, text.length);
    throw err;
  }
}
