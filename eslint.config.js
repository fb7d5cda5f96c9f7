// Layer rules (docs/architecture.md), checked by the path an import resolves to
// (scripts/lint/layers.js), so '../../e2e/lab/harness' is caught as surely as 'electron':
//   common/    pure TypeScript shared by main and renderer: no Node built-ins, no Electron, no DOM
//              globals, nothing from main/, renderer/, preload/.
//   main/      the engine runs in plain Node: only main/index.ts and main/ipc/ import Electron;
//              engine folders never import main/cli/ or main/ipc/ (those bind the engine, not the
//              other way round); main/ipc/ never imports main/cli/.
//   renderer/  never touches Node or the engine.
//   shipped code (everything above but tests) never imports e2e/, test helpers (testing/,
//   testing.ts), *.test files or vitest — statically or through a dynamic import().
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import kubedos from './scripts/lint/layers.js';

const noNode = { builtins: true, message: 'common/ and renderer/ are shared with the browser: no Node built-ins.' };
const noElectron = { module: 'electron', message: 'the engine runs in plain Node: only main/index.ts and main/ipc/ import electron.' };
const testHelpers = [
  { path: 'e2e/', message: 'shipped code never imports test code (packaging leaves e2e/ out).' },
  { testFiles: true, message: 'shipped code never imports a test file or a test helper (testing/, testing.ts).' },
  { module: 'vitest', message: 'shipped code never imports the test runner.' },
];
const noRenderer = { path: 'renderer/', message: 'the renderer is a client of main, never a dependency of it.' };
const noPreload = { path: 'preload/', message: 'the preload is the renderer\'s bridge; nothing imports it.' };
const noMain = { path: 'main/', message: 'main/ is Node; this layer may only use common/.' };
const noCli = { path: 'main/cli/', message: 'the CLI binds the engine; the engine never imports it (move the shared piece into an engine folder).' };
const noIpc = { path: 'main/ipc/', message: 'ipc/ binds the engine to the contract; the engine never imports it.' };
// common/ runs in both processes: neither the DOM's nor Node's globals exist in both.
const browserAndNodeGlobals = ['window', 'document', 'navigator', 'localStorage', 'sessionStorage', 'location', 'process', 'Buffer', 'require', '__dirname', '__filename', 'global', 'setImmediate']
  .map((name) => ({ name, message: 'common/ is shared by main and renderer: no DOM or Node globals.' }));
const layers = (...forbid) => ({ 'kubedos/layers': ['error', { forbid }] });

const TESTS = ['**/*.test.ts', '**/*.test.tsx'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'out/**', 'dist/**', 'build/**', 'e2e/output/**', '**/*.d.ts', 'payload/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { kubedos },
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['common/**/*.ts'],
    ignores: TESTS,
    rules: {
      ...layers(noNode, noElectron, noMain, noRenderer, noPreload, ...testHelpers),
      'no-restricted-globals': ['error', ...browserAndNodeGlobals],
    },
  },
  {
    // The spec builders for tests live in common/testing/ and may use each other.
    files: ['common/testing/**/*.ts'],
    ignores: TESTS,
    rules: layers(noNode, noElectron, noMain, noRenderer, noPreload, ...testHelpers.filter((t) => !t.testFiles)),
  },
  {
    // Tests of common/ run in Node (they compare files, spawn processes); they are never bundled.
    files: ['common/**/*.test.ts'],
    rules: layers(noElectron),
  },
  {
    // Tests and test builders poke at loosely typed YAML objects on purpose.
    files: [...TESTS, 'common/testing/**', 'e2e/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['renderer/**/*.ts', 'renderer/**/*.tsx'],
    languageOptions: { globals: { ...globals.browser } },
    rules: layers(noNode, noElectron, noMain, noPreload, ...testHelpers),
  },
  {
    files: ['renderer/**/*.test.ts', 'renderer/**/*.test.tsx'],
    rules: layers(noElectron, noMain, noPreload),
  },
  {
    files: ['preload/**/*.ts'],
    ignores: TESTS,
    rules: layers(noMain, noRenderer, ...testHelpers),
  },
  {
    files: ['preload/**/*.test.ts'],
    rules: layers(noMain, noRenderer),
  },
  {
    // The engine: every folder of main/ but the two that bind it (cli/, ipc/) and the Electron entry.
    files: ['main/**/*.ts'],
    ignores: ['main/index.ts', 'main/ipc/**', 'main/cli/**', ...TESTS],
    rules: layers(noElectron, noCli, noIpc, noRenderer, noPreload, ...testHelpers),
  },
  {
    files: ['main/**/*.test.ts'],
    ignores: ['main/index.test.ts', 'main/ipc/**'],
    rules: layers(noElectron, noRenderer, noPreload),
  },
  {
    files: ['main/ipc/**/*.ts'],
    ignores: TESTS,
    rules: layers(noCli, noRenderer, noPreload, ...testHelpers),
  },
  {
    files: ['main/cli/**/*.ts'],
    ignores: TESTS,
    rules: layers(noElectron, noRenderer, noPreload, ...testHelpers),
  },
  {
    files: ['main/index.ts'],
    rules: layers(noCli, noRenderer, noPreload, ...testHelpers),
  },
);
