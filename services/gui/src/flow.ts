// The architecture picture: the six components and the arrows between them; the arrows of
// the flow just used light up for a moment.

export type Flow = "command" | "read";

const ARROWS: Record<Flow, string[]> = {
  command: ["producer-kafka", "kafka-persister", "persister-cassandra", "kafka-notifier", "notifier-browser"],
  read: ["reader-cassandra"],
};

const BOXES: [id: string, label: string, x: number, y: number][] = [
  ["producer", "PRODUCER", 10, 20],
  ["kafka", "KAFKA", 190, 20],
  ["persister", "PERSISTER", 370, 20],
  ["browser", "BROWSER", 10, 130],
  ["notifier", "NOTIFIER", 190, 130],
  ["cassandra", "CASSANDRA", 370, 130],
  ["reader", "READER", 370, 240],
];

const LINES: [id: string, x1: number, y1: number, x2: number, y2: number][] = [
  ["producer-kafka", 130, 45, 186, 45],
  ["kafka-persister", 310, 45, 366, 45],
  ["persister-cassandra", 430, 70, 430, 126],
  ["kafka-notifier", 250, 70, 250, 126],
  ["notifier-browser", 190, 155, 134, 155],
  ["reader-cassandra", 430, 240, 430, 184],
];

/** The SVG markup of the picture. */
export function diagram(): string {
  const boxes = BOXES.map(
    ([id, label, x, y]) =>
      `<g class="box" id="box-${id}"><rect x="${x}" y="${y}" width="120" height="50" rx="6"/>` +
      `<text x="${x + 60}" y="${y + 30}" text-anchor="middle">${label}</text></g>`,
  ).join("");
  const lines = LINES.map(
    ([id, x1, y1, x2, y2]) =>
      `<line class="arrow" id="arrow-${id}" x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" marker-end="url(#head)"/>`,
  ).join("");
  return (
    `<svg viewBox="0 0 500 300" role="img" aria-label="Data flow: producer to Kafka to persister to ` +
    `Cassandra; Kafka to notifier to browsers; reader from Cassandra">` +
    `<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto">` +
    `<path d="M0,0 L10,5 L0,10 z"/></marker></defs>${lines}${boxes}</svg>`
  );
}

/** Lights up the arrows of `flow` in `root` for a moment. */
export function light(root: ParentNode, flow: Flow): void {
  for (const id of ARROWS[flow]) {
    const arrow = root.querySelector(`#arrow-${id}`);
    if (!arrow) continue;
    arrow.classList.remove("active");
    // Restart the animation when the same flow is used twice in a row.
    void (arrow as SVGElement).getBoundingClientRect();
    arrow.classList.add("active");
    setTimeout(() => arrow.classList.remove("active"), 1500);
  }
}
