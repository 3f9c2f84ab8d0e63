// The operator WebSocket (/ws/operator): hello with `since`, heartbeats, reconnect with
// backoff and resume from the highest message id the dashboard has seen.

export class Live {
  /**
   * @param {{since: () => number, onFrame: (f: object) => void,
   *          onState: (connected: boolean, firstConnect: boolean) => void}} opts
   */
  constructor(opts) {
    this.opts = opts;
    this.ws = null;
    this.stopped = true;
    this.attempt = 0;
    this.pingTimer = null;
    this.retryTimer = null;
    this.lastFrameAt = 0;
    this.connectedOnce = false;
    this.connected = false;
  }

  start() {
    this.stopped = false;
    this.connect();
    this.onVisible = () => {
      if (document.visibilityState === "visible" && !this.connected && !this.stopped) {
        clearTimeout(this.retryTimer);
        this.connect();
      }
    };
    document.addEventListener("visibilitychange", this.onVisible);
    this.onOnline = () => this.onVisible();
    window.addEventListener("online", this.onOnline);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    document.removeEventListener("visibilitychange", this.onVisible);
    window.removeEventListener("online", this.onOnline);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        ws.close(1000);
      } catch {
        /* ignore */
      }
    }
  }

  connect() {
    if (this.stopped) return;
    if (this.ws && (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/ws/operator`);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      ws.send(JSON.stringify({ type: "hello", since: this.opts.since() }));
      this.lastFrameAt = Date.now();
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.heartbeat(), 20_000);
    });
    ws.addEventListener("message", (ev) => {
      if (this.ws !== ws) return;
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (frame.type === "ready") {
        this.attempt = 0;
        const first = !this.connectedOnce;
        this.connectedOnce = true;
        this.connected = true;
        this.opts.onState(true, first);
      }
      if (frame.type === "pong") return;
      this.opts.onFrame(frame);
    });
    const closed = (ev) => {
      if (this.ws !== ws) return;
      if (ev && ev.code === 4401 && this.opts.onAuthLost) {
        // The session ended (logout elsewhere, deactivated): no point in reconnecting.
        this.ws = null;
        clearInterval(this.pingTimer);
        this.connected = false;
        this.opts.onAuthLost();
        return;
      }
      this.ws = null;
      clearInterval(this.pingTimer);
      if (this.connected || !this.connectedOnce) {
        this.connected = false;
        this.opts.onState(false, false);
      }
      this.scheduleRetry();
    };
    ws.addEventListener("close", closed);
    ws.addEventListener("error", () => {
      try {
        ws.close();
      } catch {
        /* ignore */
      }
    });
  }

  heartbeat() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastFrameAt > 50_000) {
      // No pong for two rounds: the connection is dead even if the browser thinks not.
      try {
        ws.close();
      } catch {
        /* ignore */
      }
      return;
    }
    ws.send(JSON.stringify({ type: "ping" }));
  }

  scheduleRetry() {
    if (this.stopped) return;
    this.attempt += 1;
    const base = Math.min(15_000, 500 * 2 ** Math.min(this.attempt, 5));
    const delay = base / 2 + Math.random() * (base / 2);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Send a frame if connected; returns false when it could not be sent. */
  send(frame) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.connected) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }
}
