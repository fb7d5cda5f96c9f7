// Types of ./cli-bundle.mjs for the TypeScript that imports it (tests, benchmarks).
export declare const REPO_ROOT: string;
export declare function cliBundle(root?: string, env?: NodeJS.ProcessEnv): { bundle?: string; why: string };
export declare function helpRequest(argv: readonly string[]): { kind: 'top' | 'version' | 'command'; command?: string; exitCode: number } | undefined;
