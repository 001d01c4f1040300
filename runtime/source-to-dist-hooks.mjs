// Module resolve hook (node:module register) of compiled concur, registered by
// typescript-loader.mjs: an import that resolves to one of concur's own TypeScript sources
// resolves to its compiled module in dist/ instead, so one copy of each module runs in a thread.
let packageUrl = '';
let distUrl = '';
const sourceDir = /^(runtime|protocols|apps|bench)\/.+\.ts$/;

export function initialize(data) {
  ({ packageUrl, distUrl } = data);
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (!resolved.url.startsWith(packageUrl) || resolved.url.startsWith(distUrl)) return resolved;
  const path = resolved.url.slice(packageUrl.length);
  if (!sourceDir.test(path)) return resolved;
  return { ...resolved, url: `${distUrl}${path.slice(0, -'.ts'.length)}.js`, format: 'module' };
}
