// Types of scripts/generate.mjs, for the drift test.
export declare const OUTPUT: string;
export declare function generate(): Promise<string>;
/** The server's own modules, bundled from its sources. */
export declare function loadServer(): Promise<{ eventInput: { safeParse(value: unknown): { success: boolean } } }>;
