// Incremental Server-Sent Events parser: feed it text chunks as they arrive, get the
// frames back, as the HTML standard's event-stream interpretation describes.

export interface Frame {
  /** The `id:` of the frame, if it had one. */
  id?: string;
  /** The `event:` type; absent for plain messages. */
  event?: string;
  /** The `data:` lines joined with newlines; absent when there were none. */
  data?: string;
  /** The `retry:` hint in milliseconds. */
  retry?: number;
}

export class SseParser {
  private buffer = "";

  /** Adds a chunk and returns the frames it completed. */
  push(chunk: string): Frame[] {
    this.buffer += chunk.replace(/\r\n?/g, "\n");
    const frames: Frame[] = [];
    let end: number;
    while ((end = this.buffer.indexOf("\n\n")) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const frame = parseBlock(block);
      if (frame) frames.push(frame);
    }
    return frames;
  }
}

function parseBlock(block: string): Frame | undefined {
  const frame: Frame = {};
  const data: string[] = [];
  let any = false;
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue; // comments: keep-alives
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    any = true;
    switch (field) {
      case "id":
        frame.id = value;
        break;
      case "event":
        frame.event = value;
        break;
      case "data":
        data.push(value);
        break;
      case "retry":
        if (/^\d+$/.test(value)) frame.retry = Number(value);
        break;
    }
  }
  if (data.length > 0) frame.data = data.join("\n");
  return any ? frame : undefined;
}
