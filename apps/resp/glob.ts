// Redis glob patterns for SCAN MATCH: `*`, `?`, `[abc]`, `[^a-z]`, and `\` to take the next
// character literally. Matched without backtracking blow-ups (one star resume point, O(n·m)),
// by code point. Must never build a RegExp from client input.

type Token = { t: 'star' } | { t: 'any' } | { t: 'char'; c: string } | { t: 'class'; negate: boolean; items: Array<string | [string, string]> };

function tokenize(pattern: string): Token[] {
  const p = [...pattern];
  const out: Token[] = [];
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (out.at(-1)?.t !== 'star') out.push({ t: 'star' });
    } else if (c === '?') {
      out.push({ t: 'any' });
    } else if (c === '\\' && i + 1 < p.length) {
      out.push({ t: 'char', c: p[++i]! });
    } else if (c === '[') {
      const close = findClose(p, i + 1);
      if (close === -1) {
        out.push({ t: 'char', c });
        continue;
      }
      let j = i + 1;
      const negate = p[j] === '^';
      if (negate) j++;
      const items: Array<string | [string, string]> = [];
      while (j < close) {
        let a = p[j]!;
        if (a === '\\' && j + 1 < close) a = p[++j]!;
        if (p[j + 1] === '-' && j + 2 < close) {
          let b = p[j + 2]!;
          let k = j + 2;
          if (b === '\\' && k + 1 < close) b = p[++k]!;
          items.push(a <= b ? [a, b] : [b, a]);
          j = k + 1;
        } else {
          items.push(a);
          j++;
        }
      }
      out.push({ t: 'class', negate, items });
      i = close;
    } else {
      out.push({ t: 'char', c });
    }
  }
  return out;
}

function findClose(p: string[], from: number): number {
  for (let j = from; j < p.length; j++) {
    if (p[j] === '\\') j++;
    else if (p[j] === ']' && j > from + (p[from] === '^' ? 1 : 0)) return j;
  }
  return -1;
}

function matchesOne(t: Token, c: string): boolean {
  switch (t.t) {
    case 'any':
      return true;
    case 'char':
      return t.c === c;
    case 'class': {
      let hit = false;
      for (const item of t.items) {
        if (typeof item === 'string' ? item === c : c >= item[0] && c <= item[1]) {
          hit = true;
          break;
        }
      }
      return hit !== t.negate;
    }
    case 'star':
      return false;
  }
}

/** A matcher for `pattern`; null when it matches everything (`*`). */
export function globMatcher(pattern: string): ((key: string) => boolean) | null {
  const tokens = tokenize(pattern);
  if (tokens.length === 1 && tokens[0]!.t === 'star') return null;
  return (key) => {
    const s = [...key];
    let p = 0;
    let i = 0;
    let starP = -1;
    let starI = 0;
    while (i < s.length) {
      const t = tokens[p];
      if (t !== undefined && t.t === 'star') {
        starP = p++;
        starI = i;
      } else if (t !== undefined && matchesOne(t, s[i]!)) {
        p++;
        i++;
      } else if (starP >= 0) {
        p = starP + 1;
        i = ++starI;
      } else {
        return false;
      }
    }
    while (p < tokens.length && tokens[p]!.t === 'star') p++;
    return p === tokens.length;
  };
}

/** The literal text every match starts with (up to the first special character), to narrow a scan. */
export function literalPrefix(pattern: string): string {
  let out = '';
  for (const c of pattern) {
    if (c === '*' || c === '?' || c === '[' || c === '\\') break;
    out += c;
  }
  return out;
}
