// Which apps a node runs: the built-in ones by name, and the user's own from a module path (its
// default export, or an export named `app`, is an App). Resolved once per node at start; the
// router (router.ts) then drives them all on one log.
import { pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import { kvApp } from '../kv/app.ts';
import { lockApp } from '../lock/app.ts';
import { appNamePattern, type App } from './app.ts';
import { enableTypeScript, isTypeScriptModule } from '../../runtime/typescript-loader.mjs';

export const builtinApps: Readonly<Record<string, App>> = Object.freeze({ kv: kvApp, lock: lockApp });
/** What `concur start` runs when --apps is not given. */
export const defaultAppNames = ['kv', 'lock'] as const;

/** A module path (as opposed to a built-in app's name): it has a slash or a file extension. */
export const isAppModule = (spec: string): boolean => /[/\\]|\.(m?[jt]s)$/.test(spec);

/** Checks an App's shape, naming what is wrong (a user's module may export anything). */
export function checkApp(x: unknown, where: string): App {
  const a = x as App;
  if (a === null || typeof a !== 'object') throw new TypeError(`${where} does not export an app (export default { name, createStateMachine })`);
  if (typeof a.name !== 'string' || !appNamePattern.test(a.name)) throw new TypeError(`${where}: an app's name must be lower-case letters, digits and dashes (1 to 32, starting with a letter), got ${JSON.stringify(a.name)}`);
  if (typeof a.createStateMachine !== 'function') throw new TypeError(`${where}: app ${a.name} has no createStateMachine() function`);
  return a;
}

/** The built-in apps named (sync: for the simulator and tests). */
export function builtinAppsNamed(names: readonly string[]): App[] {
  return names.map((n) => {
    const a = builtinApps[n];
    if (a === undefined) throw new RangeError(`no built-in app named ${JSON.stringify(n)} (built in: ${Object.keys(builtinApps).join(', ')}); give a path to load your own`);
    return a;
  });
}

/**
 * Imports a user's app module. Compiled concur (dist/, as the CLI runs) has no TypeScript loader
 * until a `.ts` app needs one; from the sources, tsx is already there.
 */
async function importAppModule(url: string): Promise<Record<string, unknown>> {
  if (import.meta.url.endsWith('.js') && isTypeScriptModule(url)) await enableTypeScript();
  return (await import(url)) as Record<string, unknown>;
}

/** Resolves app specs (built-in names or module paths, absolute or relative to the working directory). */
export async function loadApps(specs: readonly string[] = defaultAppNames): Promise<App[]> {
  const apps: App[] = [];
  for (const spec of specs) {
    if (!isAppModule(spec)) {
      apps.push(...builtinAppsNamed([spec]));
      continue;
    }
    const url = spec.startsWith('file:') ? spec : pathToFileURL(isAbsolute(spec) ? spec : resolve(spec)).href;
    let mod: Record<string, unknown>;
    try {
      mod = await importAppModule(url);
    } catch (err) {
      throw new Error(`cannot load app module ${spec}: ${(err as Error).message}`);
    }
    apps.push(checkApp(mod.default ?? mod.app, `app module ${spec}`));
  }
  const names = apps.map((a) => a.name);
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length > 0) throw new RangeError(`two apps are named ${twice[0]}; every app on a cluster needs its own name`);
  return apps;
}
