import { defineConfig } from 'vitest/config';

// Three suites: unit tests beside the code, browser e2e against `kubedos serve`,
// and lab tests that need root (network namespaces, QEMU). `vitest run` runs all three.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['common/**/*.test.ts', 'main/**/*.test.ts', 'preload/**/*.test.ts', 'renderer/**/*.test.{ts,tsx}', 'bench/**/*.test.ts', 'scripts/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.e2e.test.ts'],
          // Test output (screenshots, lab build trees that may hold a chroot's /proc) is never scanned.
          exclude: ['**/node_modules/**', 'e2e/output/**'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'lab',
          include: ['e2e/**/*.lab.test.ts'],
          // Test output (screenshots, lab build trees that may hold a chroot's /proc) is never scanned.
          // The node terminal's lab suites run on purpose (project terminal, npm run test:terminal).
          exclude: ['**/node_modules/**', 'e2e/output/**', 'e2e/terminal/**'],
          testTimeout: 900_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
      {
        // The node terminal against the namespace lab (root), CLI + engine and the workbench panel
        // in Chromium: ~55 s together, so not in CI's lab run; npm run test:terminal (docs/terminal.md).
        test: {
          name: 'terminal',
          include: ['e2e/terminal/*.lab.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
      {
        // Slow lab suites that do not fit CI's budget next to the rest; run on purpose:
        // npm run test:deploy:failures (README: what they cover and how long they take).
        test: {
          name: 'slow',
          include: ['e2e/**/*.slow.test.ts'],
          exclude: ['**/node_modules/**', 'e2e/output/**'],
          testTimeout: 3_600_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
