/**
 * mirroring.ts, imported once per instance. Later callers await the same promise instead of calling import()
 * again: an import() of a loaded module still waits on the module loader (in local mode, on tsx's hooks), and the
 * staging of the files, which follows the billed call, must not wait while the answer is being kept.
 */
let loading: Promise<typeof import('./mirroring.ts')> | undefined;

export const loadMirroring = () => (loading ??= import('./mirroring.ts'));
