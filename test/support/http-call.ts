// One HTTP request from a test: status, body as text, the body as JSON when it is JSON, headers.
export interface HttpAnswer {
  status: number;
  text: string;
  json: Record<string, unknown> | null;
  headers: Headers;
}

export async function httpCall(url: string, method: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const r = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await r.text();
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(text);
  } catch {
    // raw value bytes
  }
  return { status: r.status, text, json, headers: r.headers };
}
