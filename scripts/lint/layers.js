// ESLint rule `kubedos/layers`: the layer rules of docs/architecture.md, checked by the path an
// import resolves to — not by how it is spelled. '../../e2e/lab/harness', './../cli/table' and
// 'node:fs' are each resolved (relative specifiers against the importing file, from the repo
// root) before they are compared with the folder's forbidden list.
//
// Options: { forbid: [{ path?: 'main/cli/', module?: 'electron', builtins?: true, testFiles?: true,
//            message }] }. `path` is a repo-relative folder prefix; `module` a bare package name
// (also matches its subpaths); `builtins` every Node built-in; `testFiles` any *.test file or
// test helper (testing/ folders, testing.ts).
// Static imports, re-exports, `import type`, `import()` types, dynamic `import()` and require()
// are all checked. A dynamic import whose specifier is computed is checked by its static prefix.
import { builtinModules } from 'node:module';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: paths in the options are relative to it, whatever ESLint's cwd is. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const BUILTINS = new Set(builtinModules);
/** Test code: *.test files, and helpers for tests in a testing/ folder or a testing.ts. */
const TEST_FILE = /(^|\/)testing(\/|(\.[cm]?[jt]sx?)?$)|\.test(\.[cm]?[jt]sx?)?$/;

function isBuiltin(spec) {
  if (spec.startsWith('node:')) return true;
  return BUILTINS.has(spec.split('/')[0]) || BUILTINS.has(spec);
}

/** Where a specifier lands, as a repo-relative POSIX path (or undefined for bare modules). */
export function resolveImport(spec, fromFile, root) {
  if (!spec.startsWith('.') && !isAbsolute(spec)) return undefined;
  const abs = resolve(dirname(fromFile), spec);
  const rel = relative(root, abs).split(sep).join('/');
  return rel;
}

function violation(spec, fromFile, root, forbid) {
  const target = resolveImport(spec, fromFile, root);
  for (const f of forbid) {
    if (target !== undefined) {
      if (f.path && (target === f.path.replace(/\/$/, '') || target.startsWith(f.path))) return f;
      if (f.testFiles && TEST_FILE.test(target)) return f;
    } else {
      if (f.builtins && isBuiltin(spec)) return f;
      if (f.module && (spec === f.module || spec.startsWith(`${f.module}/`))) return f;
    }
  }
  return undefined;
}

/** The static text of a specifier node: a string literal, or a template literal's leading quasi. */
function staticSpecifier(node) {
  if (!node) return undefined;
  if (node.type === 'Literal' && typeof node.value === 'string') return { text: node.value, complete: true };
  if (node.type === 'TemplateLiteral') {
    const head = node.quasis[0]?.value.cooked ?? '';
    return { text: head, complete: node.expressions.length === 0 };
  }
  if (node.type === 'BinaryExpression' && node.operator === '+') {
    const left = staticSpecifier(node.left);
    return left ? { text: left.text, complete: false } : undefined;
  }
  return undefined;
}

const layers = {
  meta: {
    type: 'problem',
    docs: { description: 'Layer rules by resolved path (docs/architecture.md)' },
    schema: [
      {
        type: 'object',
        properties: {
          forbid: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                path: { type: 'string' },
                module: { type: 'string' },
                builtins: { type: 'boolean' },
                testFiles: { type: 'boolean' },
                message: { type: 'string' },
              },
              required: ['message'],
              additionalProperties: false,
            },
          },
        },
        additionalProperties: false,
      },
    ],
    messages: { layer: "'{{spec}}' resolves to '{{target}}': {{message}}" },
  },
  create(context) {
    const forbid = context.options[0]?.forbid ?? [];
    const root = ROOT;
    const file = context.filename;
    function check(node, sourceNode) {
      const s = staticSpecifier(sourceNode);
      if (!s) return;
      // A computed specifier ('../../e2e/lab/' + name) is judged by the folder its prefix names.
      const spec = s.text;
      if (!spec) return;
      const f = violation(spec, file, root, forbid);
      if (f) {
        context.report({
          node: sourceNode ?? node,
          messageId: 'layer',
          data: { spec: s.complete ? spec : `${spec}…`, target: resolveImport(spec, file, root) ?? spec, message: f.message },
        });
      }
    }
    return {
      ImportDeclaration: (node) => check(node, node.source),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source),
      ExportAllDeclaration: (node) => check(node, node.source),
      ImportExpression: (node) => check(node, node.source),
      // typescript-eslint 8 names the specifier `source`; older versions `argument` (a TSLiteralType).
      TSImportType: (node) => check(node, 'source' in node ? node.source : node.argument?.type === 'TSLiteralType' ? node.argument.literal : node.argument),
      TSExternalModuleReference: (node) => check(node, node.expression),
      CallExpression: (node) => {
        if (node.callee.type === 'Identifier' && node.callee.name === 'require') check(node, node.arguments[0]);
      },
    };
  },
};

export default { meta: { name: 'kubedos' }, rules: { layers } };
