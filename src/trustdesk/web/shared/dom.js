// @ts-check
// The browser side both front ends share: the one element helper `h` (user text only ever
// goes in through text nodes, never parsed as HTML), icons, stylesheets loaded with their
// feature, and what the browser can record voice in.

/** @typedef {Record<string, unknown> | string | null | undefined} Attrs */
/** @typedef {Node | string | number | null | undefined | false | Child[]} Child */

/**
 * h("div", {class: "x", onclick: fn, "aria-label": "..."}, child, "text", [more]), or the
 * short form h("div", "x", "text") where a string second argument is the class name.
 * Strings become text nodes; null / undefined / false children are skipped.
 * @param {string} tag
 * @param {Attrs} [attrs]
 * @param {...Child} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (typeof attrs === "string") {
    if (attrs) el.className = attrs;
  } else if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
      } else if (key === "class") {
        el.className = String(value);
      } else if (key === "dataset") {
        Object.assign(el.dataset, value);
      } else if (key === "value") {
        /** @type {HTMLInputElement} */ (el).value = String(value);
      } else if (key === "checked" || key === "disabled" || key === "selected" || key === "hidden") {
        /** @type {any} */ (el)[key] = Boolean(value);
      } else {
        el.setAttribute(key, value === true ? "" : String(value));
      }
    }
  }
  append(el, children);
  return el;
}

/**
 * @param {Node} el
 * @param {Child[]} children
 */
export function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * A one-path 24x24 icon, hidden from assistive technology.
 * @param {string} d the path
 * @param {number} [size]
 * @param {string} [cls]
 * @returns {SVGSVGElement}
 */
export function svgIcon(d, size = 20, cls = "") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  if (cls) svg.setAttribute("class", cls);
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", d);
  svg.append(path);
  return svg;
}

/** @type {Map<string, Promise<void>>} */
const styles = new Map();

/**
 * Add a stylesheet once (the CSP allows style-src 'self'); resolves when it applies, or
 * failed (the feature then works unstyled rather than not at all). Write the name as a
 * literal, `loadStyle("./x.css", import.meta.url)`: the server rewrites it to the file's
 * hashed name (api/assets.py).
 * @param {string} href relative to base
 * @param {string} base the calling module's import.meta.url
 * @returns {Promise<void>}
 */
export function loadStyle(href, base) {
  const url = new URL(href, base).href;
  let done = styles.get(url);
  if (!done) {
    done = new Promise((resolve) => {
      const link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = url;
      link.onload = () => resolve();
      link.onerror = () => resolve();
      document.head.append(link);
    });
    styles.set(url, done);
  }
  return done;
}

// What the browser can record a voice message in (MediaRecorder), best first; null if none.
const VOICE_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg"];

/** @returns {string | null} */
export function pickVoiceMime() {
  if (typeof MediaRecorder !== "function" || !navigator.mediaDevices?.getUserMedia) return null;
  for (const m of VOICE_TYPES) {
    try {
      if (MediaRecorder.isTypeSupported(m)) return m;
    } catch {
      /* old browsers */
    }
  }
  return null;
}
