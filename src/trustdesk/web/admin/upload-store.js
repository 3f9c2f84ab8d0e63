// Files and voice messages waiting to upload, kept across a reload (issue 21.1). The text
// outbox (outbox.js) lives in localStorage, which holds strings only; IndexedDB keeps a File
// or a Blob as it is. Each entry: {cmid, owner, ticketId, name, caption, voice, file, at}.
// The server is idempotent on client_msg_id, so one that was stored before its answer was
// lost is answered with the stored message, not stored twice. Without IndexedDB (blocked,
// private mode) every call resolves to nothing and uploads wait in memory only, as before.

const DB_NAME = "trustdesk.admin";
const STORE = "uploads";

let opening = null;

function database() {
  if (!opening) {
    opening = new Promise((resolve) => {
      let req;
      try {
        req = globalThis.indexedDB.open(DB_NAME, 1);
      } catch {
        resolve(null);
        return;
      }
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "cmid" });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => resolve(null);
      req.onblocked = () => resolve(null);
    });
  }
  return opening;
}

/** One request in its own transaction; resolves to its result once committed, else null. */
async function run(mode, make) {
  const db = await database();
  if (!db) return null;
  return new Promise((resolve) => {
    let req = null;
    try {
      const tx = db.transaction(STORE, mode);
      req = make(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result ?? null);
      tx.onerror = () => resolve(null);
      tx.onabort = () => resolve(null);
    } catch {
      resolve(null);
    }
  });
}

/** Keep an upload until it is stored or discarded. */
export function keepUpload(owner, p) {
  const row = { cmid: p.cmid, owner, ticketId: p.ticketId, name: p.name, caption: p.caption, voice: p.voice, file: p.file, at: Date.now() };
  return run("readwrite", (store) => store.put(row));
}

export function dropUpload(cmid) {
  return run("readwrite", (store) => store.delete(cmid));
}

/** This operator's kept uploads, oldest first (the order they were picked in). */
export async function keptUploads(owner) {
  const rows = (await run("readonly", (store) => store.getAll())) || [];
  return rows.filter((r) => r && r.owner === owner && r.file).sort((a, b) => a.at - b.at);
}
