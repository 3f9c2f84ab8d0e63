// @ts-check
// What a file must be before it is uploaded (the server checks again: this only saves a
// pointless upload and says why at once).

export const MAX_FILE_BYTES = 10 * 1024 * 1024; // the server's documented default limit
export const ALLOWED_TYPES = new Set([
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
  "application/pdf",
  "audio/webm",
  "audio/ogg",
  "video/webm", // some systems label .webm audio as video
  "application/ogg",
]);

/**
 * Why a file cannot be sent, as the server's error code, or null.
 * @param {{size: number, type?: string}} file
 * @param {number} [maxBytes]
 * @returns {"empty_file" | "file_too_large" | "unsupported_type" | null}
 */
export function fileProblem(file, maxBytes = MAX_FILE_BYTES) {
  if (!file.size) return "empty_file";
  if (file.size > maxBytes) return "file_too_large";
  const type = (file.type || "").split(";")[0].trim().toLowerCase();
  if (type && !ALLOWED_TYPES.has(type)) return "unsupported_type";
  return null;
}
