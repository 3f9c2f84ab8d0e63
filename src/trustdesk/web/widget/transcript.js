// Emailing the transcript of the conversation (when the shop has email set up). Loaded
// with the first click on its button.

const EMAIL_RE = /^[^@\s<>]{1,64}@[^@\s<>]{1,190}\.[^@\s<>]{1,60}$/;

async function errorCode(res) {
  try {
    return String((await res.json())?.error?.code || "");
  } catch {
    return "";
  }
}

// ctx: as away.js's, plus contact() and setContact(email); returns {openSheet(), closeSheet()}.
export function createTranscript(ctx) {
  const { t } = ctx;
  const $ = (id) => document.getElementById(id);
  const tBtn = $("transcript-btn");
  const sheet = $("sheet");
  const tForm = $("transcript-form");
  const tEmail = $("transcript-email");
  const tStatus = $("transcript-status");

  function openSheet() {
    sheet.hidden = false;
    tStatus.hidden = true;
    tStatus.dataset.kind = "";
    tForm.hidden = false;
    tEmail.value = ctx.contact() || ctx.contactEmail() || "";
    tEmail.focus();
  }

  function closeSheet() {
    if (sheet.hidden) return false;
    sheet.hidden = true;
    tBtn.focus({ preventScroll: true });
    return true;
  }

  $("transcript-cancel").addEventListener("click", closeSheet);
  tForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const email = tEmail.value.trim();
    const say = (text, kind) => {
      tStatus.textContent = text;
      tStatus.dataset.kind = kind;
      tStatus.hidden = false;
    };
    if (email && !EMAIL_RE.test(email)) {
      say(t("invalidEmail"), "error");
      tEmail.focus();
      return;
    }
    const { ticketId } = ctx.current();
    if (!ticketId) return;
    const btn = tForm.querySelector("button[type=submit]");
    btn.disabled = true;
    try {
      const res = await ctx.api("/api/support/transcript", {
        method: "POST",
        body: email ? { ticketId, email } : { ticketId },
      });
      if (res.ok) {
        const data = await res.json();
        if (email) ctx.setContact(email);
        tForm.hidden = true;
        say(t("transcriptSent", { email: data.sent_to || email }), "ok");
        setTimeout(() => {
          if (tForm.hidden) closeSheet();
        }, 4000);
        return;
      }
      const code = await errorCode(res);
      if (res.status === 429) say(t("transcriptWait"), "error");
      else if (code === "email_required" || code === "invalid_email") say(t("invalidEmail"), "error");
      else say(t("errGeneric"), "error");
    } catch {
      say(t("errNetworkShort"), "error");
    } finally {
      btn.disabled = false;
    }
  });

  return { openSheet, closeSheet };
}
