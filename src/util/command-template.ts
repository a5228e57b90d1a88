/**
 * Command templates of the autoscaler's `command` provider (resourcemanager.autoscaler.command.*):
 * split into words once, each placeholder replaced inside its word, so no shell ever sees a value.
 * Here at the bottom so the configuration validates a template the same way the provider runs it.
 */

/** Placeholders a command template may use. */
export const TEMPLATE_PLACEHOLDERS = ['count', 'id'] as const;

/**
 * Splits a command template into words (blanks separate words; '…' and "…" quote, without escapes)
 * and checks its placeholders. Throws Error naming what is wrong (the caller names the key).
 */
export function parseCommandTemplate(template: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (const ch of template) {
    if (quote) {
      if (ch === quote) quote = null;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word ??= '';
    } else if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (quote) throw new Error(`has an unclosed ${quote}`);
  if (word !== null) words.push(word);
  if (words.length === 0) throw new Error('is empty; give a program and its arguments, e.g. kubectl scale statefulset/taskmanager --replicas={count}');
  for (const w of words) {
    for (const m of w.matchAll(/\{([^{}]*)\}/g)) {
      if (!(TEMPLATE_PLACEHOLDERS as readonly string[]).includes(m[1])) throw new Error(`uses the unknown placeholder {${m[1]}}; the placeholders are ${TEMPLATE_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}`);
    }
  }
  if (words[0].includes('{')) throw new Error('must start with a program, not a placeholder');
  return words;
}

/** The words of a template with `{count}` and `{id}` filled in. */
export function fillTemplate(words: readonly string[], request: { id: string; desired: number }): string[] {
  return words.map((w) => w.replace(/\{count\}/g, String(request.desired)).replace(/\{id\}/g, request.id));
}
