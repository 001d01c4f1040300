// RESP answers as bytes: simple strings, errors, integers, bulk strings, arrays, and the two
// shapes RESP3 spells differently (null and map). Must never see a socket or a backend: pure
// encoding, so a connection can build an answer and queue it in order.

/** RESP2 (every client) or RESP3 (after `HELLO 3`). */
export type Protocol = 2 | 3;

export const ok = Buffer.from('+OK\r\n');
export const pong = Buffer.from('+PONG\r\n');
const nil2 = Buffer.from('$-1\r\n');
const nil3 = Buffer.from('_\r\n');
const emptyArray = Buffer.from('*0\r\n');
// The integers most answers carry (counts, 0/1), made once.
const smallIntegers = Array.from({ length: 64 }, (_, i) => Buffer.from(`:${i}\r\n`));

export function simple(text: string): Buffer {
  return Buffer.from(`+${text.replace(/[\r\n]+/g, ' ')}\r\n`);
}

/** An error answer; `message` starts with its code (`ERR ...`, `TRYAGAIN ...`). */
export function error(message: string): Buffer {
  return Buffer.from(`-${message.replace(/[\r\n]+/g, ' ')}\r\n`);
}

export function integer(n: number | bigint): Buffer {
  if (typeof n === 'number' && n >= 0 && n < smallIntegers.length) return smallIntegers[n]!;
  return Buffer.from(`:${n}\r\n`);
}

export function nil(proto: Protocol): Buffer {
  return proto === 3 ? nil3 : nil2;
}

/** A bulk string: the bytes as they are, or a string as UTF-8. */
export function bulk(value: Uint8Array | string): Buffer {
  if (typeof value === 'string') {
    const length = Buffer.byteLength(value);
    const header = `$${length}\r\n`;
    const out = Buffer.allocUnsafe(header.length + length + 2);
    out.write(header, 0, 'latin1');
    out.write(value, header.length, 'utf8');
    out[out.length - 2] = 13;
    out[out.length - 1] = 10;
    return out;
  }
  const header = `$${value.length}\r\n`;
  const out = Buffer.allocUnsafe(header.length + value.length + 2);
  out.write(header, 0, 'latin1');
  out.set(value, header.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

export function bulkOrNil(value: Uint8Array | string | null, proto: Protocol): Buffer {
  return value === null ? nil(proto) : bulk(value);
}

export function array(items: readonly Buffer[]): Buffer {
  if (items.length === 0) return emptyArray;
  return Buffer.concat([Buffer.from(`*${items.length}\r\n`), ...items]);
}

/** Pairs as a RESP3 map, or (RESP2) the flat array Redis answers there. */
export function map(pairs: ReadonlyArray<readonly [string, Buffer]>, proto: Protocol): Buffer {
  const parts: Buffer[] = [Buffer.from(proto === 3 ? `%${pairs.length}\r\n` : `*${pairs.length * 2}\r\n`)];
  for (const [k, v] of pairs) parts.push(bulk(k), v);
  return Buffer.concat(parts);
}
