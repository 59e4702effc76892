// SVG line plots of set-up + teardown time (log scale) for strata and each baseline: against image
// size at 10 layers, and against layer count at the smallest size. No dependencies.

const SERIES = [
  { name: 'strata prolog+epilog', color: '#1f77b4', value: (row) => row.cold.median + row.epilog.median },
  { name: 'squashfuse + fuse-overlayfs', color: '#2ca02c', value: (row) => row.fuse.median },
  { name: 'unsquashfs (enroot)', color: '#ff7f0e', value: (row) => row.unsquashfs.median },
  { name: 'tar -xzf (docker)', color: '#d62728', value: (row) => row.tar.median },
];

function panel({ x0, title, xLabel, points, xs }) {
  const width = 420, height = 300, left = x0 + 60, top = 40, plotW = width - 80, plotH = height - 90;
  const all = points.flatMap((p) => SERIES.map((s) => s.value(p.row)));
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...all))), yMax = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const xMin = Math.log(xs[0]), xMax = Math.log(xs.at(-1));
  const px = (x) => left + (xMax === xMin ? plotW / 2 : ((Math.log(x) - xMin) / (xMax - xMin)) * plotW);
  const py = (y) => top + plotH - ((Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * plotH;
  const out = [`<text x="${left + plotW / 2}" y="22" text-anchor="middle" font-weight="bold">${title}</text>`];
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  for (let y = yMin; y <= yMax; y *= 10) {
    out.push(`<line x1="${left}" x2="${left + plotW}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${py(y) + 4}" text-anchor="end">${y >= 1000 ? `${y / 1000} s` : `${y} ms`}</text>`);
  }
  for (const x of xs) out.push(`<text x="${px(x)}" y="${top + plotH + 16}" text-anchor="middle">${x}</text>`);
  out.push(`<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle">${xLabel}</text>`);
  for (const series of SERIES) {
    const coords = points.map((p) => `${px(p.x).toFixed(1)},${py(series.value(p.row)).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${series.color}" stroke-width="2" points="${coords.join(' ')}"/>`);
    for (const c of coords) out.push(`<circle cx="${c.split(',')[0]}" cy="${c.split(',')[1]}" r="3" fill="${series.color}"/>`);
  }
  return out.join('\n');
}

export function setupPlot(rows) {
  const bySize = rows.filter((row) => row.count === 10).sort((a, b) => a.size - b.size);
  const smallest = Math.min(...rows.map((row) => row.size));
  const byLayers = rows.filter((row) => row.size === smallest).sort((a, b) => a.count - b.count);
  const parts = [];
  if (bySize.length) parts.push(panel({ x0: 0, title: 'set-up + teardown vs image size (10 layers)', xLabel: 'image size (GB)', xs: bySize.map((r) => r.size), points: bySize.map((row) => ({ x: row.size, row })) }));
  if (byLayers.length) parts.push(panel({ x0: 430, title: `set-up + teardown vs layers (${smallest} GB)`, xLabel: 'layers', xs: byLayers.map((r) => r.count), points: byLayers.map((row) => ({ x: row.count, row })) }));
  const legend = SERIES.map((s, i) => `<rect x="${70 + i * 200}" y="${312}" width="12" height="12" fill="${s.color}"/><text x="${88 + i * 200}" y="${322}">${s.name}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="880" height="335" font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n${legend.join('\n')}\n</svg>\n`;
}
