// ESLint (flat config) for the front end: plain ES modules run as they are by the browser,
// and the node --test files. `make lint` runs it (npm ci first: versions pinned in
// package-lock.json).
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["node_modules/**", ".venv/**", ".tools/**"] },
  js.configs.recommended,
  {
    files: ["src/trustdesk/web/**/*.js"],
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      "no-empty": ["error", { allowEmptyCatch: true }],
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-implicit-globals": "error",
      "no-restricted-properties": [
        "error",
        { property: "innerHTML", message: "User text goes in as text: use h() / textContent." },
        { property: "outerHTML", message: "User text goes in as text: use h() / textContent." },
      ],
      // `let x = null; try { x = parse() } catch {}` is how this code reads input: fine.
      "no-useless-assignment": "off",
      "no-eval": "error",
      "no-new-func": "error",
    },
  },
  {
    files: ["src/trustdesk/web/admin/sw.js"],
    languageOptions: { globals: { ...globals.serviceworker } },
  },
  {
    files: ["tests/js/**/*.mjs", "eslint.config.js"],
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: "module",
      globals: { ...globals.node },
    },
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
];
