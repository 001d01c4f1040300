// Lets a thread import TypeScript modules: the sources of concur run through tsx, and so does a
// user's .ts module (an actor, an app) in a thread of compiled concur (dist/). Plain JavaScript,
// so that worker and pool bootstraps can use it before any loader is registered.
// In compiled concur, a hook registered before tsx sends imports of concur's own sources (a .ts
// file under the package's runtime/, protocols/, apps/, bench/) to their compiled modules in
// dist/: a user's module that imports them relatively (the demo apps do) then shares classes such
// as AppHttpError with the compiled host instead of loading a second copy of each.
import { existsSync } from 'node:fs';
import { register } from 'node:module';

const typeScript = /\.[cm]?tsx?$/;

/** Whether the module at `url` (a file: URL or absolute path) is TypeScript. */
export function isTypeScriptModule(url) {
  if (typeof url !== 'string' && !(url instanceof URL)) return false;
  const s = String(url);
  return typeScript.test(s.startsWith('file:') ? new URL(s).pathname : s);
}

/** Whether this module runs from a build: dist/ holds build-info.json (scripts/build.mjs). */
const distUrl = new URL('../', import.meta.url);
const compiled = existsSync(new URL('build-info.json', distUrl));

let enabled = false;

/** Registers tsx in this thread (once), after the hook above when this is compiled concur. */
export async function enableTypeScript() {
  if (enabled) return;
  enabled = true;
  if (compiled) register('./source-to-dist-hooks.mjs', import.meta.url, { data: { packageUrl: new URL('../', distUrl).href, distUrl: distUrl.href } });
  (await import('tsx/esm/api')).register();
}
