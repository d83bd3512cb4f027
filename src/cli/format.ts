/** Plain-text rendering helpers shared by CLI commands. */
let numberFormat: Intl.NumberFormat | undefined;

/** en-US grouping ("25,530,472"); integers without Intl, whose set-up is ~10 ms of every command's start. */
export function formatCount(n: number): string {
  if (Number.isSafeInteger(n)) return String(n).replace(/\B(?=(\d{3})+$)/g, ',');
  return (numberFormat ??= new Intl.NumberFormat('en-US')).format(n);
}

/** Lays out rows of cells in aligned columns; numeric cells are right-aligned. */
export function table(rows: readonly (readonly (string | number)[])[], indent = '  '): string {
  const cells = rows.map((row) => row.map((c) => (typeof c === 'number' ? formatCount(c) : c)));
  const widths: number[] = [];
  for (const row of cells) row.forEach((c, k) => (widths[k] = Math.max(widths[k] ?? 0, c.length)));
  return cells
    .map((row, r) =>
      indent + row.map((c, k) => (typeof rows[r]![k] === 'number' ? c.padStart(widths[k]!) : c.padEnd(widths[k]!))).join('  ').trimEnd(),
    )
    .join('\n');
}
