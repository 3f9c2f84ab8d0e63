/*! TrustDesk widget loader. Embed with:
 *   <script src="https://support.example.com/widget.js" data-locale="ru" async></script>
 * Optional data attributes: data-locale="ru|en", data-title="Shop name" (the panel's header),
 * data-color="#2563eb" (accent), data-position="right|left", data-team="payments" (a new
 * ticket from this page goes to the team a routing rule names for it).
 *
 * Draws the launcher (in a shadow root, so the shop's CSS cannot touch it) and, on first open,
 * the chat panel: an iframe served by TrustDesk. Nothing is stored and no request is made
 * before the customer opens the chat for the first time. The page and the frame talk only by
 * postMessage, each checking the other's origin.
 *
 * Known customers (optional): data-user-id, data-user-expires (unix seconds) and data-user-hash
 * (hex HMAC-SHA256 of "<id>:<expires>" with the shop's TrustDesk identity secret, computed on
 * the shop's server), plus data-user-name and data-user-email. Sent to TrustDesk only once the
 * customer has opened the chat; a wrong or expired signature leaves the chat anonymous.
 *
 * JS API: TrustDesk.open(), TrustDesk.close(), TrustDesk.toggle(), TrustDesk.isOpen(),
 *         TrustDesk.on("message" | "open" | "close" | "unread", fn) -> unsubscribe function,
 *         TrustDesk.setUser({id, expires, hash, name?, email?}) (at runtime, e.g. after login),
 *         TrustDesk.setUser(null) (after logout: the chat forgets this browser's customer).
 */
(function () {
  "use strict";

  if (window.TrustDesk && window.TrustDesk.__trustdesk) return; // included twice

  var script =
    document.currentScript ||
    document.querySelector('script[src$="/widget.js"], script[src*="/widget.js?"]');
  if (!script || !script.src) return;

  var ORIGIN = new URL(script.src, location.href).origin;
  var data = script.dataset || {};
  // The shop's settings from the dashboard, written in by the server; the script tag's data
  // attributes win over them (a page can differ from the rest of the shop).
  var SERVER = /*TRUSTDESK_SETTINGS*/ {};
  var lang = String(data.locale || navigator.language || "").toLowerCase();
  var LOCALE = /^en/.test(lang) ? "en" : "ru"; // data-locale wins, then the browser
  var HEX = /^#[0-9a-f]{3,8}$/i;
  var COLOR = HEX.test(data.color || "") ? data.color : HEX.test(SERVER.color || "") ? SERVER.color : "";
  var LEFT = (data.position || SERVER.position) === "left";
  var TITLE = String(data.title || SERVER.title || "").trim().slice(0, 60);
  var TEAM = String(data.team || "").trim().slice(0, 64);
  var SEEN_KEY = "trustdesk:opened"; // set only after the customer opened the chat once
  var user = readUser(data); // the shop's signed customer, or null
  var userSent = false;

  function readUser(d) {
    if (!d.userId || !d.userHash) return null;
    var u = { id: String(d.userId), expires: Number(d.userExpires), hash: String(d.userHash) };
    if (d.userName) u.name = String(d.userName);
    if (d.userEmail) u.email = String(d.userEmail);
    return u;
  }

  var TEXT = {
    ru: {
      open: "Открыть чат",
      close: "Свернуть чат",
      unread: "непрочитанных",
      frame: "Чат поддержки",
      support: "Поддержка",
      dismiss: "Скрыть",
      blocked: "Чат не подключён на этом сайте",
      blockedHint: "Владелец сайта может включить его в настройках TrustDesk: «Виджет» → «Сайты».",
    },
    en: { open: "Open chat", close: "Minimize chat", unread: "unread", frame: "Support chat",
      support: "Support",
      dismiss: "Dismiss",
      blocked: "Chat is not connected on this site",
      blockedHint: "The site owner can turn it on in TrustDesk settings: Widget → Sites.",
    },
  }[LOCALE];

  var CSS =
    ":host{all:initial;}" +
    "*{box-sizing:border-box;}" +
    ".launcher{position:fixed;bottom:24px;right:24px;z-index:2147483000;width:60px;height:60px;" +
    "display:grid;place-items:center;padding:0;margin:0;border:0;border-radius:50%;cursor:pointer;" +
    "color:#fff;background:var(--td-accent,#2563eb);" +
    "background-image:linear-gradient(135deg,rgba(255,255,255,.18),rgba(0,0,0,.12));" +
    "box-shadow:0 8px 24px rgba(15,23,42,.28),0 2px 6px rgba(15,23,42,.18);" +
    "transition:transform .18s ease,box-shadow .18s ease;-webkit-tap-highlight-color:transparent;}" +
    ".launcher:hover{transform:translateY(-2px) scale(1.04);" +
    "box-shadow:0 12px 28px rgba(15,23,42,.32),0 3px 8px rgba(15,23,42,.2);}" +
    ".launcher:active{transform:scale(.96);}" +
    ".launcher:focus-visible{outline:3px solid var(--td-accent,#2563eb);outline-offset:3px;}" +
    ".launcher svg{position:absolute;transition:transform .2s ease,opacity .2s ease;}" +
    ".launcher .i-close{opacity:0;transform:rotate(-90deg) scale(.6);}" +
    ".is-open .launcher .i-chat{opacity:0;transform:rotate(90deg) scale(.6);}" +
    ".is-open .launcher .i-close{opacity:1;transform:none;}" +
    ".dot{position:absolute;top:1px;right:1px;width:16px;height:16px;border-radius:50%;" +
    "background:#ef4444;box-shadow:0 0 0 2.5px #fff;animation:td-pulse 1.8s ease-out 2;}" +
    ".dot[hidden]{display:none;}" +
    ".panel{position:fixed;bottom:100px;right:24px;z-index:2147483000;width:400px;" +
    "height:min(640px,calc(100vh - 124px));height:min(640px,calc(100dvh - 124px));" +
    "border-radius:18px;overflow:hidden;background:#fff;" +
    "box-shadow:0 24px 60px rgba(15,23,42,.28),0 4px 14px rgba(15,23,42,.12);" +
    "opacity:0;visibility:hidden;pointer-events:none;transform:translateY(16px) scale(.98);" +
    "transform-origin:bottom right;" +
    "transition:opacity .2s ease,transform .2s ease,visibility 0s linear .2s;}" +
    ".is-open .panel{opacity:1;visibility:visible;pointer-events:auto;transform:none;" +
    "transition:opacity .2s ease,transform .2s ease,visibility 0s;}" +
    ".panel iframe{display:block;width:100%;height:100%;border:0;background:#fff;color-scheme:light;" +
    "visibility:hidden;}" +
    ".is-ready .panel iframe{visibility:visible;}" +
    ".notice{position:absolute;inset:0;display:grid;place-content:center;gap:8px;padding:32px;" +
    "text-align:center;font:14px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;" +
    "color:#475569;}" +
    ".notice strong{font-size:16px;color:#0f172a;}" +
    ".is-blocked .spinner{display:none;}" +
    ".spinner{position:absolute;inset:0;margin:auto;width:28px;height:28px;border-radius:50%;" +
    "border:3px solid #e2e8f0;border-top-color:var(--td-accent,#2563eb);" +
    "animation:td-spin .8s linear infinite;}" +
    ".is-ready .spinner{display:none;}" +
    ".preview{position:fixed;bottom:98px;right:24px;z-index:2147483000;width:300px;" +
    "max-width:calc(100vw - 48px);font:14px/1.45 'TrustDesk Emoji',system-ui,-apple-system,'Segoe UI',Roboto," +
    "'Helvetica Neue',Arial,'Noto Sans','Liberation Sans',sans-serif,'Apple Color Emoji'," +
    "'Segoe UI Emoji','Noto Color Emoji';animation:td-rise .25s ease-out;}" +
    ".preview[hidden]{display:none;}" +
    ".preview__card{display:block;width:100%;margin:0;padding:12px 16px 14px;text-align:left;" +
    "font:inherit;color:#0f172a;background:#fff;border:1px solid #e3e8f0;border-radius:16px;" +
    "border-bottom-right-radius:6px;cursor:pointer;" +
    "box-shadow:0 12px 32px rgba(15,23,42,.18),0 2px 6px rgba(15,23,42,.08);}" +
    ".preview__card:focus-visible{outline:3px solid var(--td-accent,#2563eb);outline-offset:2px;}" +
    ".preview__who{display:block;margin-bottom:3px;font-size:12.5px;font-weight:600;color:#64748b;}" +
    ".preview__text{display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;" +
    "overflow:hidden;overflow-wrap:anywhere;white-space:pre-line;}" +
    ".preview__x{position:absolute;top:-10px;left:-10px;width:24px;height:24px;display:grid;" +
    "place-items:center;padding:0;border:0;border-radius:50%;cursor:pointer;color:#475569;" +
    "background:#fff;box-shadow:0 2px 8px rgba(15,23,42,.22);}" +
    ".is-open .preview{display:none;}" +
    ".left .preview{right:auto;left:24px;}" +
    ".left .launcher{right:auto;left:24px;}" +
    ".left .panel{right:auto;left:24px;transform-origin:bottom left;}" +
    "@media (max-width:480px){" +
    ".launcher{bottom:16px;right:16px;width:56px;height:56px;}" +
    ".left .launcher{left:16px;}" +
    ".panel,.left .panel{inset:0;width:100%;height:100%;border-radius:0;transform:translateY(24px);}" +
    ".is-open .launcher{display:none;}" +
    ".preview{bottom:84px;right:16px;max-width:calc(100vw - 32px);}" +
    "}" +
    "@media (prefers-reduced-motion:reduce){.launcher,.panel,.launcher svg{transition:none;}" +
    ".dot{animation:none;}}" +
    "@keyframes td-spin{to{transform:rotate(360deg);}}" +
    "@keyframes td-rise{from{opacity:0;transform:translateY(8px);}}" +
    "@keyframes td-pulse{0%{box-shadow:0 0 0 2.5px #fff,0 0 0 2.5px rgba(239,68,68,.6);}" +
    "100%{box-shadow:0 0 0 2.5px #fff,0 0 0 12px rgba(239,68,68,0);}}";

  var SVG_NS = "http://www.w3.org/2000/svg";

  function icon(cls, d, size) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", cls);
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", size);
    svg.setAttribute("height", size);
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", d);
    svg.appendChild(path);
    return svg;
  }

  function storageGet(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function storageSet(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (e) {
      /* private mode: fine */
    }
  }

  // --- state ---------------------------------------------------------------------------------

  var host, root, wrap, launcher, dot, panel, frame, preview, previewWho, previewText;
  var isOpen = false;
  var frameReady = false;
  var unread = 0;
  var listeners = { message: [], open: [], close: [], unread: [], ready: [] };
  var titleBase = null;
  var titleSet = null;
  var mobile = window.matchMedia ? window.matchMedia("(max-width: 480px)") : null;
  var savedOverflow = null;

  function emit(name, payload) {
    var list = (listeners[name] || []).slice();
    for (var i = 0; i < list.length; i++) {
      try {
        list[i](payload);
      } catch (e) {
        setTimeout(function () {
          throw e;
        });
      }
    }
  }

  // --- DOM -----------------------------------------------------------------------------------

  function build() {
    host = document.createElement("trustdesk-widget");
    // Inline styles set through the CSSOM are allowed by CSP and beat the shop's selectors.
    var hs = host.style;
    hs.setProperty("display", "block", "important");
    hs.setProperty("position", "static", "important");
    hs.setProperty("width", "0", "important");
    hs.setProperty("height", "0", "important");
    hs.setProperty("margin", "0", "important");
    hs.setProperty("padding", "0", "important");
    hs.setProperty("border", "0", "important");
    hs.setProperty("visibility", "visible", "important");
    hs.setProperty("opacity", "1", "important");
    root = host.attachShadow({ mode: "open" });
    applyStyles(root);
    addEmojiFace();

    wrap = document.createElement("div");
    wrap.className = "td" + (LEFT ? " left" : "");
    if (COLOR) wrap.style.setProperty("--td-accent", COLOR);

    launcher = document.createElement("button");
    launcher.type = "button";
    launcher.className = "launcher";
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-haspopup", "dialog");
    launcher.appendChild(
      icon(
        "i-chat",
        "M12 3C6.48 3 2 6.97 2 11.86c0 2.38 1.06 4.54 2.79 6.13-.14 1.1-.6 2.5-1.71 3.63 0 0 2.9-.1 5.02-1.85 1.2.37 2.51.57 3.9.57 5.52 0 10-3.97 10-8.86S17.52 3 12 3Zm-4.5 10a1.25 1.25 0 1 1 0-2.5 1.25 1.25 0 0 1 0 2.5Zm4.5 0a1.25 1.25 0 1 1 0-2.5 1.25 1.25 0 0 1 0 2.5Zm4.5 0a1.25 1.25 0 1 1 0-2.5 1.25 1.25 0 0 1 0 2.5Z",
        "30",
      ),
    );
    launcher.appendChild(
      icon(
        "i-close",
        "M18.3 5.71a1 1 0 0 0-1.41 0L12 10.59 7.11 5.7A1 1 0 0 0 5.7 7.11L10.59 12 5.7 16.89a1 1 0 1 0 1.41 1.41L12 13.41l4.89 4.89a1 1 0 0 0 1.41-1.41L13.41 12l4.89-4.89a1 1 0 0 0 0-1.4Z",
        "26",
      ),
    );
    dot = document.createElement("span");
    dot.className = "dot";
    dot.hidden = true;
    dot.setAttribute("aria-hidden", "true");
    launcher.appendChild(dot);
    launcher.addEventListener("click", function () {
      toggle();
    });

    panel = document.createElement("div");
    panel.className = "panel";
    panel.id = "trustdesk-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", TEXT.frame);
    panel.setAttribute("aria-hidden", "true");
    panel.inert = true;
    var spinner = document.createElement("div");
    spinner.className = "spinner";
    panel.appendChild(spinner);

    // A short preview of an operator's reply that arrived while the chat was closed.
    preview = document.createElement("div");
    preview.className = "preview";
    preview.hidden = true;
    var card = document.createElement("button");
    card.type = "button";
    card.className = "preview__card";
    previewWho = document.createElement("span");
    previewWho.className = "preview__who";
    previewText = document.createElement("span");
    previewText.className = "preview__text";
    card.appendChild(previewWho);
    card.appendChild(previewText);
    card.addEventListener("click", function () {
      open();
    });
    var dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "preview__x";
    dismiss.setAttribute("aria-label", TEXT.dismiss);
    dismiss.appendChild(
      icon(
        "",
        "M18.3 5.71a1 1 0 0 0-1.41 0L12 10.59 7.11 5.7A1 1 0 0 0 5.7 7.11L10.59 12 5.7 16.89a1 1 0 1 0 1.41 1.41L12 13.41l4.89 4.89a1 1 0 0 0 1.41-1.41L13.41 12l4.89-4.89a1 1 0 0 0 0-1.4Z",
        "14",
      ),
    );
    dismiss.addEventListener("click", function () {
      preview.hidden = true;
    });
    preview.appendChild(card);
    preview.appendChild(dismiss);

    launcher.setAttribute("aria-controls", panel.id);
    wrap.appendChild(preview);
    wrap.appendChild(panel);
    wrap.appendChild(launcher);
    root.appendChild(wrap);
    renderLauncher();
    document.body.appendChild(host);
  }

  // @font-face is ignored inside shadow trees, so the emoji face goes to the document itself
  // (a namespaced family that nothing else uses).
  var EMOJI_FACE =
    "@font-face{font-family:'TrustDesk Emoji';src:local('Apple Color Emoji'),local('AppleColorEmoji')," +
    "local('Segoe UI Emoji'),local('SegoeUIEmoji'),local('Noto Color Emoji'),local('NotoColorEmoji');" +
    "unicode-range:U+200D,U+2600-27BF,U+2B05-2B55,U+FE0F,U+1F000-1FAFF;}";

  function addEmojiFace() {
    try {
      if (!("adoptedStyleSheets" in document)) return;
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(EMOJI_FACE);
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
    } catch (e) {
      /* cosmetic only */
    }
  }

  function applyStyles(shadow) {
    try {
      if ("adoptedStyleSheets" in shadow && typeof CSSStyleSheet === "function") {
        var sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        shadow.adoptedStyleSheets = [sheet];
        return;
      }
    } catch (e) {
      /* fall through */
    }
    var style = document.createElement("style");
    style.textContent = CSS;
    shadow.appendChild(style);
  }

  // Asked once, on the first open from another site, beside the frame's own load (no wait):
  // a site that is not allowed gets a notice in words instead of a frame the browser refuses.
  var siteChecked = false;

  function checkSite() {
    if (siteChecked || location.origin === ORIGIN || typeof fetch !== "function") return;
    siteChecked = true;
    fetch(ORIGIN + "/api/support/site", { credentials: "omit", cache: "no-store" })
      .then(function (r) {
        return r.ok ? r.json() : null;
      })
      .then(function (body) {
        if (body && body.allowed === false && !frameReady) showBlocked();
      })
      .catch(function () {
        /* the frame's own load says the rest */
      });
  }

  function showBlocked() {
    if (frame) frame.remove();
    var notice = document.createElement("div");
    notice.className = "notice";
    notice.setAttribute("role", "alert");
    var head = document.createElement("strong");
    head.textContent = TEXT.blocked;
    var hint = document.createElement("span");
    hint.textContent = TEXT.blockedHint;
    notice.appendChild(head);
    notice.appendChild(hint);
    panel.appendChild(notice);
    wrap.classList.add("is-blocked");
  }

  function ensureFrame() {
    if (frame) return;
    checkSite();
    frame = document.createElement("iframe");
    frame.title = TEXT.frame;
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.setAttribute("allow", "microphone; clipboard-read"); // voice messages, pasted screenshots
    var params = new URLSearchParams();
    params.set("origin", location.origin);
    params.set("locale", LOCALE);
    params.set("open", isOpen ? "1" : "0");
    if (COLOR) params.set("color", COLOR);
    if (TITLE) params.set("title", TITLE);
    if (TEAM) params.set("team", TEAM);
    frame.src = ORIGIN + "/widget/frame.html#" + params.toString();
    panel.appendChild(frame);
  }

  function showPreview(m) {
    var text = String(m.message || "");
    if (text.length > 160) text = text.slice(0, 157) + "…";
    var name = String(m.sender_name || "").slice(0, 60);
    previewWho.textContent = name ? name + " · " + TEXT.support : TEXT.support;
    previewText.textContent = text; // text, never HTML
    preview.hidden = false;
  }

  function renderLauncher() {
    wrap.classList.toggle("is-open", isOpen);
    launcher.setAttribute("aria-expanded", String(isOpen));
    var label = isOpen ? TEXT.close : TEXT.open;
    if (!isOpen && unread > 0) label += ", " + TEXT.unread + ": " + unread;
    launcher.setAttribute("aria-label", label);
    launcher.title = isOpen ? TEXT.close : TEXT.open;
    dot.hidden = isOpen || unread === 0;
    if (isOpen || unread === 0) preview.hidden = true;
    panel.setAttribute("aria-hidden", String(!isOpen));
    panel.inert = !isOpen;
    renderTitle();
  }

  // Unread count in the page title while the tab is hidden.
  function renderTitle() {
    var want = document.hidden && unread > 0;
    if (titleSet !== null && document.title !== titleSet) {
      titleBase = null; // the shop changed its title meanwhile: keep theirs
      titleSet = null;
    }
    if (want) {
      if (titleBase === null) titleBase = document.title;
      titleSet = "(" + unread + ") " + titleBase;
      document.title = titleSet;
    } else if (titleSet !== null) {
      document.title = titleBase;
      titleBase = null;
      titleSet = null;
    }
  }

  // --- phone: full screen, follow the visual viewport so the keyboard never hides the input --

  function isMobile() {
    return Boolean(mobile && mobile.matches);
  }

  function fitViewport() {
    if (!panel) return;
    var vv = window.visualViewport;
    if (isOpen && isMobile() && vv) {
      panel.style.top = vv.offsetTop + "px";
      panel.style.height = vv.height + "px";
      panel.style.bottom = "auto";
    } else {
      panel.style.removeProperty("top");
      panel.style.removeProperty("height");
      panel.style.removeProperty("bottom");
    }
  }

  function lockScroll(lock) {
    var style = document.documentElement.style;
    if (lock && savedOverflow === null) {
      savedOverflow = style.overflow;
      style.overflow = "hidden";
    } else if (!lock && savedOverflow !== null) {
      style.overflow = savedOverflow;
      savedOverflow = null;
    }
  }

  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", fitViewport);
    window.visualViewport.addEventListener("scroll", fitViewport);
  }

  // --- talking to the frame ------------------------------------------------------------------

  function postFrame(msg) {
    if (!frame || !frameReady || !frame.contentWindow) return;
    msg.source = "trustdesk-loader";
    frame.contentWindow.postMessage(msg, ORIGIN);
  }

  function sendUser() {
    if (!frameReady || userSent) return;
    userSent = true;
    postFrame({ type: "identify", user: user });
  }

  function sendState(focus) {
    postFrame({ type: "state", open: isOpen, focus: Boolean(focus), pageUrl: location.href });
  }

  window.addEventListener("message", function (ev) {
    if (!frame || ev.origin !== ORIGIN || ev.source !== frame.contentWindow) return;
    var msg = ev.data;
    if (!msg || typeof msg !== "object" || msg.source !== "trustdesk-frame") return;
    switch (msg.type) {
      case "ready":
        frameReady = true;
        wrap.classList.add("is-ready");
        sendState(isOpen && !isMobile());
        if (user) sendUser();
        emit("ready");
        break;
      case "close":
        close();
        launcher.focus();
        break;
      case "unread":
        var n = Number(msg.count);
        unread = isFinite(n) && n > 0 ? Math.floor(n) : 0;
        renderLauncher();
        emit("unread", unread);
        break;
      case "message":
        if (!msg.message || typeof msg.message !== "object") break;
        if (!isOpen && unread > 0 && msg.message.sender_type === "admin") showPreview(msg.message);
        emit("message", msg.message);
        break;
    }
  });

  document.addEventListener("visibilitychange", renderTitle);

  // --- open / close --------------------------------------------------------------------------

  var openWhenBuilt = false;

  function open() {
    if (!wrap) {
      openWhenBuilt = true; // called before the page's body exists
      return;
    }
    if (isOpen) return;
    isOpen = true;
    storageSet(SEEN_KEY, "1");
    ensureFrame();
    renderLauncher();
    if (isMobile()) lockScroll(true);
    fitViewport();
    sendState(!isMobile());
    if (frameReady && !isMobile()) frame.focus();
    emit("open");
  }

  function close() {
    openWhenBuilt = false;
    if (!isOpen) return;
    isOpen = false;
    renderLauncher();
    lockScroll(false);
    fitViewport();
    sendState(false);
    emit("close");
  }

  function toggle() {
    if (isOpen) close();
    else open();
  }

  // --- public API ----------------------------------------------------------------------------

  window.TrustDesk = {
    __trustdesk: true,
    version: "1",
    open: open,
    close: close,
    toggle: toggle,
    isOpen: function () {
      return isOpen;
    },
    unread: function () {
      return unread;
    },
    on: function (name, fn) {
      if (!listeners[name] || typeof fn !== "function") return function () {};
      listeners[name].push(fn);
      return function () {
        var i = listeners[name].indexOf(fn);
        if (i >= 0) listeners[name].splice(i, 1);
      };
    },
    setUser: function (u) {
      if (u === null) {
        user = null;
      } else if (u && typeof u === "object") {
        user = {
          id: String(u.id == null ? "" : u.id),
          expires: Number(u.expires),
          hash: String(u.hash || ""),
        };
        if (u.name) user.name = String(u.name);
        if (u.email) user.email = String(u.email);
      } else {
        return;
      }
      userSent = false;
      if (user === null && !frame) return; // nothing was ever shared
      sendUser();
    },
    off: function (name, fn) {
      var list = listeners[name] || [];
      var i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    },
  };

  function boot() {
    build();
    if (openWhenBuilt) open();
    // A customer who has chatted here before gets the frame loaded in the background, so a
    // reply that arrives while they browse lights the red dot.
    if (storageGet(SEEN_KEY) === "1") {
      var later = window.requestIdleCallback || function (fn) {
        setTimeout(fn, 300);
      };
      later(function () {
        ensureFrame();
      });
    }
    try {
      window.dispatchEvent(new CustomEvent("trustdesk:ready"));
    } catch (e) {
      /* old browsers */
    }
  }

  if (document.body) boot();
  else document.addEventListener("DOMContentLoaded", boot);
})();
