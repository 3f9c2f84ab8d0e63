// Trust Store demo: a pretend cart, and buttons that open the support chat via the widget's
// public JS API (window.TrustDesk), exactly as a real shop could.

const count = document.getElementById("cart-count");
const cart = document.getElementById("cart");
const toast = document.getElementById("toast");
let items = 0;
let toastTimer = 0;

function say(text) {
  toast.textContent = text;
  toast.classList.add("is-shown");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => toast.classList.remove("is-shown"), 2200);
}

for (const button of document.querySelectorAll(".add")) {
  button.addEventListener("click", () => {
    items += 1;
    count.textContent = String(items);
    cart.setAttribute("aria-label", `Корзина, товаров: ${items}`);
    cart.classList.add("is-bump");
    setTimeout(() => cart.classList.remove("is-bump"), 300);
    say(`«${button.dataset.name}» в корзине`);
  });
}

function openChat() {
  if (window.TrustDesk) window.TrustDesk.open();
  else window.addEventListener("trustdesk:ready", () => window.TrustDesk.open(), { once: true });
}

for (const id of ["ask", "ask-2"]) {
  document.getElementById(id)?.addEventListener("click", openChat);
}

// The demo's "logged-in" customer (only when the server runs with TRUSTDESK_DEMO_CUSTOMER,
// which marks the page with data-demo-customer):
// signed by the server as a shop's own server would sign it, handed to the widget, so the
// dashboard shows their name and their orders from the demo order hook (/demo/api/orders).
async function signInDemoCustomer() {
  let who;
  try {
    const r = await fetch("/demo/api/customer", { credentials: "omit" });
    if (!r.ok) return;
    who = await r.json();
  } catch {
    return;
  }
  const account = document.getElementById("account");
  account.textContent = `👤 ${who.name}`;
  account.title = "Демо-покупатель: его заказы видны оператору рядом с чатом";
  account.hidden = false;
  const user = { id: who.id, expires: who.expires, hash: who.hash, name: who.name, email: who.email };
  if (window.TrustDesk) window.TrustDesk.setUser(user);
  else window.addEventListener("trustdesk:ready", () => window.TrustDesk.setUser(user), { once: true });
}

if (document.documentElement.hasAttribute("data-demo-customer")) signInDemoCustomer();
