// The transcript file format shared by the Raft and Paxos scenario tests (after etcd's
// datadriven tests): each block is a command line, a `----` line and the output expected from
// it, then a blank line; `#` lines before a command are comments kept on rewrite. Run with
// CONCUR_REWRITE=1 to rewrite the expected output from what the code does now — then read the
// diff before keeping it.
import { readFileSync, writeFileSync } from 'node:fs';

interface Block {
  command: string;
  expected: string[];
  comments: string[];
}

export function parseTranscript(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let comments: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      if (line.startsWith('#')) comments.push(line);
      i++;
      continue;
    }
    const command = line;
    if (lines[i + 1] !== '----') throw new Error(`line ${i + 2}: expected ---- after "${command}"`);
    i += 2;
    const expected: string[] = [];
    while (i < lines.length && lines[i] !== '') expected.push(lines[i++]!);
    blocks.push({ command, expected, comments });
    comments = [];
  }
  return blocks;
}

function render(blocks: Block[], outputs: string[][]): string {
  const parts: string[] = [];
  blocks.forEach((b, k) => {
    const head = b.comments.length > 0 ? `${b.comments.join('\n')}\n` : '';
    parts.push(`${head}${b.command}\n----\n${outputs[k]!.join('\n')}${outputs[k]!.length > 0 ? '\n' : ''}`);
  });
  return parts.join('\n');
}

/**
 * Runs a transcript file through `run` (one command line → its output lines); returns the
 * mismatches (or rewrites the file when CONCUR_REWRITE=1). A throw is the output `error: …`.
 */
export function runTranscriptFile(path: string, run: (command: string) => string[]): string[] {
  const blocks = parseTranscript(readFileSync(path, 'utf8'));
  const outputs: string[][] = [];
  const mismatches: string[] = [];
  for (const b of blocks) {
    let out: string[];
    try {
      out = run(b.command);
    } catch (err) {
      out = [`error: ${(err as Error).message}`];
    }
    outputs.push(out);
    if (out.join('\n') !== b.expected.join('\n')) {
      mismatches.push(`${b.command}\n  expected:\n    ${b.expected.join('\n    ')}\n  got:\n    ${out.join('\n    ')}`);
    }
  }
  if (process.env.CONCUR_REWRITE === '1') {
    writeFileSync(path, render(blocks, outputs));
    return [];
  }
  return mismatches;
}
