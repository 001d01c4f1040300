// The API token of `--token-file` (and CONCUR_TOKEN_FILE): read, trimmed and checked, for the
// server (`concur start`) and every client command alike. Must never put the token itself into
// a message: errors name the file and what is wrong with it, nothing of its content.
import { readFileSync } from 'node:fs';
import { UsageError } from './options.ts';

/** The environment variable every command reads when `--token-file` is not given. */
export const tokenFileEnv = 'CONCUR_TOKEN_FILE';

/** What `--token-file` says in every command's help. */
export const tokenFileHelp = 'file holding the API token, sent as "Authorization: Bearer <token>"';

/**
 * A token travels in an HTTP header: visible ASCII only (RFC 6750's token68 and more). A
 * control character or a space inside would make the request fail with an error that quotes
 * the header, token and all.
 */
const tokenPattern = /^[\x21-\x7e]+$/;

/** The token in `path`, trimmed; a UsageError (exit 2) naming the file when there is none. */
export function readTokenFile(path: string, flag = '--token-file'): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (code ?? (err as Error).message);
    throw new UsageError(`cannot read ${flag} ${path}: ${why}; give a file that holds the token (e.g. made with: openssl rand -hex 32 > ${path})`);
  }
  const token = text.trim();
  if (token === '') throw new UsageError(`${flag} ${path} is empty; put the token in it (e.g. openssl rand -hex 32 > ${path})`);
  if (!tokenPattern.test(token)) throw new UsageError(`${flag} ${path} holds characters a token cannot have: only visible ASCII, no spaces or line breaks inside (e.g. openssl rand -hex 32 > ${path})`);
  return token;
}
