// A small server-sent-events reader on fetch, for the demo scripts and the tests: it follows a
// stream (as `curl -N` or a browser's EventSource would) and hands over each event and comment.
export interface SseEvent {
  event: string;
  id: string | null;
  data: unknown;
}

export interface SseHandlers {
  onEvent(e: SseEvent): void;
  onComment?(text: string): void;
}

/** Reads `url` until `signal` aborts or the server ends the stream; rejects on a non-200 answer. */
export async function followSse(url: string, handlers: SseHandlers, signal: AbortSignal): Promise<void> {
  const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal });
  if (res.status !== 200 || res.body === null) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  const decoder = new TextDecoder();
  let buf = '';
  let event = 'message';
  let id: string | null = null;
  let data: string[] = [];
  const line = (l: string): void => {
    if (l === '') {
      if (data.length > 0) {
        const text = data.join('\n');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: hand over the text
        }
        handlers.onEvent({ event, id, data: parsed });
      }
      event = 'message';
      id = null;
      data = [];
      return;
    }
    if (l.startsWith(':')) return handlers.onComment?.(l.slice(1).trim());
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    const value = colon < 0 ? '' : l.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'id') id = value;
    else if (field === 'data') data.push(value);
  };
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        line(buf.slice(0, nl).replace(/\r$/, ''));
        buf = buf.slice(nl + 1);
      }
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}
