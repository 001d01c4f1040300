// A small well-formedness check for the SVG the bench writes (no XML library in the project):
// one root, every tag closed in order, attributes quoted, no stray '<' or '&'.
export function wellFormedXml(text: string): void {
  const stack: string[] = [];
  let roots = 0;
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>/g;
  let at = 0;
  for (let m = tag.exec(text); m !== null; m = tag.exec(text)) {
    checkText(text.slice(at, m.index));
    at = tag.lastIndex;
    if (m[2] === undefined) continue;
    const [, close, name, , self] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open ?? 'nothing'}>`);
    } else {
      if (stack.length === 0) roots++;
      if (!self) stack.push(name!);
    }
  }
  checkText(text.slice(at));
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (roots !== 1) throw new Error(`expected one root element, found ${roots}`);
}

function checkText(t: string): void {
  if (t.includes('<')) throw new Error(`malformed tag near: ${t.slice(t.indexOf('<'), t.indexOf('<') + 40)}`);
  if (/&(?!amp;|lt;|gt;|quot;|apos;|#\d+;)/.test(t)) throw new Error(`bare & in: ${t.slice(0, 40)}`);
}
