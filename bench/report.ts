export interface Column<Row> {
  title: string;
  value(row: Row): string;
  /** Text columns are left-aligned, numbers right-aligned. */
  align?: 'left' | 'right';
}

/** A plain-text table that reads the same in a terminal, a CI log and a README code block. */
export function formatTable<Row>(rows: readonly Row[], columns: readonly Column<Row>[]): string {
  const cells = rows.map((row) => columns.map((column) => column.value(row)));
  const widths = columns.map((column, i) => Math.max(column.title.length, ...cells.map((line) => (line[i] as string).length)));
  const pad = (text: string, i: number): string => {
    const width = widths[i] as number;
    return (columns[i]?.align ?? 'right') === 'left' ? text.padEnd(width) : text.padStart(width);
  };
  const line = (texts: readonly string[]): string => texts.map(pad).join('  ').trimEnd();
  return [line(columns.map((c) => c.title)), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export function fixed(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits);
}

export function thousands(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? '—' : Math.round(value).toLocaleString('en-US');
}

export function megabytes(bytes: number | undefined): string {
  return bytes === undefined ? '—' : (bytes / 1024 / 1024).toFixed(1);
}

export function signed(value: number, digits: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(digits)}`;
}
