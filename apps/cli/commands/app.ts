// `concur app ./my-app.ts <command> ...`: an app's own CLI commands (App.cli), loaded from its
// module and run against the HTTP API of a running `concur start` (`--url`). The app says what
// its commands are; this wires them, the API flags and the error handling.
import { Command } from 'commander';
import { UsageError } from '../options.ts';
import { ApiClientError, apiBase, request, withApiFlags, type ApiClientOptions } from '../http-client.ts';

export function registerApp(program: Command): void {
  program
    .command('app <module>')
    .description("run an app's own commands against a running cluster, e.g. concur app ./my-app.ts --help")
    .argument('[args...]', "the app's command and its arguments")
    .allowUnknownOption()
    .helpOption(false)
    .passThroughOptions()
    .action(async (module: string, args: string[]) => {
      const { loadApps } = await import('../../platform/registry.ts');
      let app;
      try {
        [app] = await loadApps([module.includes('/') || module.includes('\\') ? module : `./${module}`]);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      if (app!.cli === undefined) throw new UsageError(`app ${app!.name} (${module}) has no CLI commands; it is used through its HTTP routes (see its README)`);
      const cmd = withApiFlags(new Command(`concur app ${module}`)).description(app!.description ?? `the ${app!.name} app`).exitOverride();
      const flags = () => cmd.opts() as ApiClientOptions;
      app!.cli(cmd, {
        async request(method, path, body) {
          const opts = flags();
          const url = new URL(path.replace(/^\//, ''), apiBase(opts.url));
          const res = await request(opts, url, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
          const text = await res.text();
          try {
            return { status: res.status, body: text === '' ? null : JSON.parse(text) };
          } catch {
            throw new ApiClientError(`the server answered ${res.status} with something other than JSON: ${text.slice(0, 200)}`);
          }
        },
      });
      try {
        await cmd.parseAsync(args, { from: 'user' });
      } catch (err) {
        // Like every client command: a failed request is one line and an exit code, not a stack.
        if (!(err instanceof ApiClientError)) throw err;
        process.stderr.write(`concur: ${err.message}\n`);
        process.exitCode = err.exitCode;
      }
    });
}
