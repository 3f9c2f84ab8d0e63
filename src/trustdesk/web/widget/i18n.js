// TrustDesk widget texts. Russian is the default; English is chosen by the embed tag's
// data-locale="en" or by a browser language starting with "en".

const STRINGS = {
  ru: {
    frameTitle: "Чат поддержки",
    title: "Поддержка",
    online: "Операторы в сети",
    offline: "Не в сети — ответим позже",
    connecting: "Подключение…",
    reconnecting: "Нет связи. Переподключаемся…",
    offlineBanner: "Нет соединения. Сообщения отправятся, когда связь вернётся.",
    pollingBanner: "Работаем в режиме совместимости",
    greeting: "Привет! Чем могу помочь? 😊",
    supportLabel: "👤 Поддержка",
    message: "Сообщение",
    placeholder: "Напишите сообщение…",
    send: "Отправить",
    emoji: "Эмодзи",
    emojiPanel: "Выбор эмодзи",
    close: "Свернуть чат",
    mute: "Выключить звук",
    unmute: "Включить звук",
    newMessages: "Новые сообщения",
    typing: "печатает...",
    operatorTyping: "{name} печатает...",
    pending: "Ожидает отправки",
    sent: "Отправлено",
    read: "Прочитано",
    failed: "Не отправлено",
    you: "Вы",
    closedBanner: "Тикет закрыт. Напишите, если остались вопросы.",
    log: "История переписки",
    poweredBy: "Работает на TrustDesk",
    tooLong: "Сообщение слишком длинное",
    today: "Сегодня",
    yesterday: "Вчера",
  },
  en: {
    frameTitle: "Support chat",
    title: "Support",
    online: "We're online",
    offline: "Away — we'll reply soon",
    connecting: "Connecting…",
    reconnecting: "Connection lost. Reconnecting…",
    offlineBanner: "You're offline. Messages will be sent when you're back.",
    pollingBanner: "Compatibility mode",
    greeting: "Hi! How can I help? 😊",
    supportLabel: "👤 Support",
    message: "Message",
    placeholder: "Type a message…",
    send: "Send",
    emoji: "Emoji",
    emojiPanel: "Emoji picker",
    close: "Minimize chat",
    mute: "Mute sounds",
    unmute: "Unmute sounds",
    newMessages: "New messages",
    typing: "typing...",
    operatorTyping: "{name} is typing...",
    pending: "Waiting to send",
    sent: "Sent",
    read: "Read",
    failed: "Not sent",
    you: "You",
    closedBanner: "Ticket closed. Write to us if you need anything else.",
    log: "Conversation",
    poweredBy: "Powered by TrustDesk",
    tooLong: "The message is too long",
    today: "Today",
    yesterday: "Yesterday",
  },
};

// The server stores its notices in Russian; show them in English when the widget is English.
const SERVER_TEXTS_EN = [
  [/^Привет! Чем могу помочь\? 😊$/u, () => "Hi! How can I help? 😊"],
  [/^👨‍💼 Оператор (.+) подключился к диалогу$/u, (m) => `👨‍💼 ${m[1]} joined the conversation`],
  [/^✅ Тикет закрыт\. Спасибо за обращение!$/u, () => "✅ Ticket closed. Thank you for reaching out!"],
  [/^Тикет открыт повторно$/u, () => "Ticket reopened"],
];

export function detectLocale(requested, browserLanguage) {
  const want = String(requested || "").toLowerCase();
  if (want.startsWith("en")) return "en";
  if (want.startsWith("ru")) return "ru";
  return String(browserLanguage || "").toLowerCase().startsWith("en") ? "en" : "ru";
}

export function makeT(locale) {
  const table = STRINGS[locale] || STRINGS.ru;
  return (key, vars) => {
    let s = table[key] ?? STRINGS.ru[key] ?? key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.replace(`{${k}}`, String(v));
    return s;
  };
}

export function localizeServerText(locale, text) {
  if (locale !== "en") return text;
  for (const [re, fn] of SERVER_TEXTS_EN) {
    const m = re.exec(text);
    if (m) return fn(m);
  }
  return text;
}

export const EMOJI = [
  "😊", "😀", "😂", "🙂", "😉", "😍", "🤔", "😅",
  "😢", "😮", "😎", "🙏", "👍", "👎", "👌", "👋",
  "🙌", "👏", "💪", "❤️", "🔥", "✨", "🎉", "✅",
  "❌", "❓", "📦", "🚚", "💳", "🛒", "🎁", "⭐",
];
