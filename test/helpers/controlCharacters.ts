/** The control characters (C0 but the newline, DEL, C1) in a text: what must never reach a terminal or log raw. */
export function controlCharacters(text: string): string[] {
  return [...text].filter((char) => {
    const code = char.codePointAt(0) ?? 0;
    return (code < 0x20 && char !== '\n') || (code >= 0x7f && code <= 0x9f);
  });
}
