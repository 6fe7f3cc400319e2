import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start servers and the bundle test synthesises the stack with esbuild.
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Metrics' EMF lines are off but where a test turns them on to read them (POWERTOOLS_METRICS_DISABLED=false).
    env: { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true', AWS_REGION: 'cn-north-1' },
  },
});
