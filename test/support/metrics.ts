/** One scrape of a Prometheus text exposition, to look series up by name and labels (in any order). */
export type Scrape = {
  text: string;
  /** The series' value; undefined when the scrape has no such series. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every series of a metric name, e.g. to assert that an error counter has none above zero. */
  series(name: string): Array<{ labels: Record<string, string>; value: number }>;
};

export async function scrape(adminUrl: string): Promise<Scrape> {
  const response = await fetch(`${adminUrl}/metrics`);
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  return parseExposition(await response.text());
}

export function parseExposition(text: string): Scrape {
  const all: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = (pair[2] as string).replace(/\\(.)/g, '$1');
    all.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  const same = (a: Record<string, string>, b: Record<string, string>): boolean => Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);
  return {
    text,
    value: (name, labels = {}) => all.find((s) => s.name === name && same(s.labels, labels))?.value,
    series: (name) => all.filter((s) => s.name === name).map(({ labels, value }) => ({ labels, value })),
  };
}
