// The composer's emoji panel, loaded with its first opening (composer.js).

export const EMOJI = [
  "😊", "😀", "😂", "🙂", "😉", "😍", "🤔", "😅",
  "😢", "😮", "😎", "🙏", "👍", "👎", "👌", "👋",
  "🙌", "👏", "💪", "❤️", "🔥", "✨", "🎉", "✅",
  "❌", "❓", "📦", "🚚", "💳", "🛒", "🎁", "⭐",
];
