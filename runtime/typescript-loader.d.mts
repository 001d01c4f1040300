// Types of typescript-loader.mjs (plain JavaScript, so the worker bootstraps can load it first).
export function isTypeScriptModule(url: unknown): boolean;
export function enableTypeScript(): Promise<void>;
