// Lint rules, including the architecture: imports flow api ← policy ← delivery ← sidecar and api ← kube ← operator,
// both programs may use runtime, the two programs never import each other, and nothing imports cmd/.
import tseslint from 'typescript-eslint';

const LAYERS = ['api', 'policy', 'delivery', 'sidecar', 'kube', 'operator', 'runtime', 'demo'];
const ALLOWED = {
  api: [],
  policy: ['api'],
  // The store and the delivery rules; the sidecar runs the loop that sends deliveries through its policy.
  delivery: ['api', 'policy'],
  sidecar: ['api', 'policy', 'delivery', 'runtime'],
  kube: ['api'],
  operator: ['api', 'kube', 'runtime'],
  runtime: ['api'],
  // The demo runs the sidecar as a process, the way a user does, so it imports neither program.
  demo: ['api', 'runtime'],
};

function boundary(layer) {
  const forbidden = LAYERS.filter((l) => l !== layer && !ALLOWED[layer].includes(l));
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...forbidden.map((l) => ({
              group: [`../${l}`, `../${l}/*`, `../../src/${l}/*`],
              message: `src/${layer} may import only ${['itself', ...ALLOWED[layer].map((a) => `src/${a}`)].join(', ')}.`,
            })),
            { group: ['**/cmd/*'], message: 'Nothing imports cmd/: it holds entry points only.' },
          ],
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['node_modules/', '.tools/', 'dist/', 'bench/results/', 'charts/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  ...LAYERS.map(boundary),
  {
    // Importing @kubernetes/client-node costs about 90 MB of RSS; the programs use its types only and
    // talk to the API server through src/kube (cmd/loaded-modules.test.ts checks what really loads).
    files: ['src/**/*.ts', 'cmd/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@kubernetes/client-node',
              allowTypeImports: true,
              message: 'Use `import type`: requests go through src/kube (KubeClient.requestJson and the wrappers).',
            },
          ],
        },
      ],
    },
  },
  {
    // An ES module import of node:http makes Node read every export to build the module namespace, and
    // three of them (WebSocket, CloseEvent, MessageEvent) are getters that load Node's own bundled copy
    // of undici: about 13 MB of RSS in a process that never uses them. process.getBuiltinModule gives
    // the CommonJS object and leaves the getters alone (cmd/loaded-modules.test.ts checks).
    files: ['src/**/*.ts', 'cmd/**/*.ts'],
    ignores: ['**/*.test.ts', 'src/demo/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          // `import { type X }` still loads the module; only `import type` is erased.
          selector: "ImportDeclaration[source.value='node:http'][importKind!='type']",
          message: "Take node:http's values from process.getBuiltinModule('node:http'), and its types with `import type`.",
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'hack/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/cmd/*'], message: 'Nothing imports cmd/: run it as a process.' }] }],
    },
  },
);
