// @ts-check
// A tiny store: one state object, changed only through set(), and subscribers told which
// keys changed. Features render from the state in a subscriber instead of being called by
// hand from every place that changes it.

/**
 * @template {Record<string, any>} T
 * @typedef {object} Store
 * @property {T} state read freely; change only with set()
 * @property {(patch: Partial<T>) => (keyof T)[]} set apply a patch; returns the keys that changed
 * @property {(keys: (keyof T)[] | null, fn: (state: T, changed: (keyof T)[]) => void) => () => void} subscribe
 *   call fn after a set() that changed one of keys (all keys when null); returns unsubscribe
 */

/**
 * @template {Record<string, any>} T
 * @param {T} initial
 * @returns {Store<T>}
 */
export function createStore(initial) {
  const state = initial;
  /** @type {Set<{keys: Set<keyof T> | null, fn: (state: T, changed: (keyof T)[]) => void}>} */
  const subs = new Set();
  let depth = 0;
  return {
    state,
    set(patch) {
      /** @type {(keyof T)[]} */
      const changed = [];
      for (const key of /** @type {(keyof T)[]} */ (Object.keys(patch))) {
        if (!Object.is(state[key], patch[key])) {
          state[key] = /** @type {T[keyof T]} */ (patch[key]);
          changed.push(key);
        }
      }
      if (changed.length === 0) return changed;
      if (depth > 20) throw new Error("store: subscribers keep changing the state");
      depth += 1;
      try {
        for (const sub of [...subs]) {
          if (!sub.keys || changed.some((k) => sub.keys?.has(k))) sub.fn(state, changed);
        }
      } finally {
        depth -= 1;
      }
      return changed;
    },
    subscribe(keys, fn) {
      const sub = { keys: keys ? new Set(keys) : null, fn };
      subs.add(sub);
      return () => {
        subs.delete(sub);
      };
    },
  };
}

/**
 * A dispatch table: frame type -> the features' handlers, in the order they registered.
 * @template F
 * @returns {{on: (type: string, fn: (frame: F) => void) => void, dispatch: (type: string, frame: F) => boolean}}
 */
export function createDispatch() {
  /** @type {Map<string, ((frame: F) => void)[]>} */
  const table = new Map();
  return {
    on(type, fn) {
      table.set(type, [...(table.get(type) || []), fn]);
    },
    dispatch(type, frame) {
      const handlers = table.get(type);
      if (!handlers) return false;
      for (const fn of handlers) fn(frame);
      return true;
    },
  };
}
