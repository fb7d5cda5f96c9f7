// Layering rules (ARCHITECTURE.md): common/ is pure TypeScript shared by main and renderer,
// so it may not import Node built-ins or Electron; the engine in main/ runs in plain Node,
// so only main/index.ts and main/ipc/ may import Electron; the renderer never touches Node.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { builtinModules } from 'node:module';

const nodeBuiltins = [
  ...builtinModules,
  ...builtinModules.map((m) => `node:${m}`),
];
const nodePatterns = nodeBuiltins.map((name) => ({
  name,
  message: 'common/ and renderer/ are shared with the browser: no Node built-ins (ARCHITECTURE.md).',
}));
const electronBan = {
  name: 'electron',
  message: 'The engine runs in plain Node: only main/index.ts and main/ipc/ may import electron.',
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'out/**', 'dist/**', 'build/**', 'e2e/output/**', '**/*.d.ts', 'payload/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['common/**/*.ts', 'common/**/*.tsx'],
    rules: {
      'no-restricted-imports': ['error', { paths: [...nodePatterns, electronBan] }],
    },
  },
  {
    // Tests and test builders poke at loosely typed YAML objects on purpose.
    files: ['**/*.test.ts', '**/*.test.tsx', 'common/testing/**', 'e2e/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Tests of common/ run in Node (they compare files, spawn processes); they are never bundled.
    files: ['common/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [electronBan] }] },
  },
  {
    files: ['renderer/**/*.ts', 'renderer/**/*.tsx'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': ['error', { paths: [...nodePatterns, electronBan] }],
    },
  },
  {
    files: ['main/**/*.ts'],
    ignores: ['main/index.ts', 'main/ipc/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: [electronBan] }],
    },
  },
);
