// Types of dist-freshness.mjs (plain JavaScript: the bin loads it before any TypeScript loader).
export const buildInfoFile: string;
export function sourceHash(bytes: Uint8Array): string;
export function whyNotFresh(root: string, dist?: string): string | null;
