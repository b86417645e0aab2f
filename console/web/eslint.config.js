import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['node_modules/', '../dist/'] },
  js.configs.recommended,
  {
    files: ['src/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['test/**/*.js', '*.mjs', '*.js'],
    languageOptions: { globals: globals.node },
  },
  {
    rules: {
      eqeqeq: 'error',
      'no-var': 'error',
      'prefer-const': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
      'no-restricted-syntax': ['error',
        { selector: "AssignmentExpression[left.property.name='innerHTML']", message: 'build nodes with h(): no HTML from strings' },
        { selector: "AssignmentExpression[left.property.name='outerHTML']", message: 'build nodes with h(): no HTML from strings' }],
    },
  },
];
