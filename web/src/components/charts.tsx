// Charts on Chart.js (canvas: fast with thousands of points, tree-shaken to what we register).
// Colours come from the theme's CSS variables and follow a theme switch.
import { useEffect, useRef, useState } from 'react';
import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  DoughnutController,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
} from 'chart.js';
import { cssVar } from '../theme';
import { compact } from '../format';

Chart.register(
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  DoughnutController,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
);

/** The theme's chart palette, in order. */
export function palette(): string[] {
  return [1, 2, 3, 4, 5, 6].map((i) => cssVar(`--chart-${i}`) || '#888');
}

/** Re-renders when the theme changes. */
function useThemeVersion(): number {
  const [v, setV] = useState(0);
  useEffect(() => {
    const bump = () => setV((x) => x + 1);
    window.addEventListener('tollgate:theme', bump);
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    mq?.addEventListener?.('change', bump);
    return () => {
      window.removeEventListener('tollgate:theme', bump);
      mq?.removeEventListener?.('change', bump);
    };
  }, []);
  return v;
}

function useChart(config: () => ChartConfiguration, deps: unknown[]) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const theme = useThemeVersion();
  useEffect(() => {
    if (!canvas.current) return;
    const text = cssVar('--text-muted');
    const grid = cssVar('--chart-grid');
    Chart.defaults.color = text;
    Chart.defaults.borderColor = grid;
    Chart.defaults.font.family = cssVar('--font') || 'system-ui';
    const chart = new Chart(canvas.current, config());
    return () => chart.destroy();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [theme, ...deps]);
  return canvas;
}

export interface Series {
  label: string;
  data: (number | null)[];
  /** Which y axis: left (default) or right. */
  axis?: 'left' | 'right';
  kind?: 'line' | 'bar';
}

/** A line (or mixed bar/line) chart over labels, with an optional right-hand axis. */
export function TrendChart({
  labels,
  series,
  label,
  height = 260,
  formatLeft = compact,
  formatRight = compact,
}: {
  labels: string[];
  series: Series[];
  /** Accessible description of the chart. */
  label: string;
  height?: number;
  formatLeft?: (n: number) => string;
  formatRight?: (n: number) => string;
}) {
  const dual = series.some((s) => s.axis === 'right');
  const canvas = useChart(() => {
    const colours = palette();
    return {
      type: 'line',
      data: {
        labels,
        datasets: series.map((s, i) => ({
          type: s.kind ?? 'line',
          label: s.label,
          data: s.data,
          yAxisID: s.axis === 'right' ? 'y1' : 'y',
          borderColor: colours[i % colours.length],
          backgroundColor: s.kind === 'bar' ? colours[i % colours.length] + 'aa' : colours[i % colours.length] + '22',
          fill: s.kind !== 'bar' && i === 0,
          tension: 0.25,
          pointRadius: labels.length > 60 ? 0 : 2,
          borderWidth: 2,
        })),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: 'index', intersect: false },
        plugins: { legend: { position: 'bottom' } },
        scales: {
          x: { grid: { display: false }, ticks: { maxTicksLimit: 12, autoSkip: true } },
          y: { beginAtZero: true, position: 'left', ticks: { callback: (v) => formatLeft(Number(v)) } },
          ...(dual
            ? {
                y1: {
                  beginAtZero: true,
                  position: 'right' as const,
                  grid: { drawOnChartArea: false },
                  ticks: { callback: (v: string | number) => formatRight(Number(v)) },
                },
              }
            : {}),
        },
      },
    } as ChartConfiguration;
  }, [JSON.stringify(labels), JSON.stringify(series)]);
  return (
    <div className="chart-box" style={{ height }}>
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}

/** Horizontal bars: a ranking (top keys, routes, models). */
export function BarList({
  items,
  label,
  height,
  format = compact,
}: {
  items: { label: string; value: number }[];
  label: string;
  height?: number;
  format?: (n: number) => string;
}) {
  const canvas = useChart(() => {
    const colours = palette();
    return {
      type: 'bar',
      data: {
        labels: items.map((i) => i.label),
        datasets: [{ label, data: items.map((i) => i.value), backgroundColor: colours[0], borderRadius: 4 }],
      },
      options: {
        indexAxis: 'y',
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { callback: (v) => format(Number(v)) } }, y: { grid: { display: false } } },
      },
    } as ChartConfiguration;
  }, [JSON.stringify(items)]);
  return (
    <div className="chart-box" style={{ height: height ?? Math.max(120, items.length * 28 + 40) }}>
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}

/** A doughnut: shares of a whole (route distribution, models). */
export function Distribution({
  items,
  label,
  height = 240,
}: {
  items: { label: string; value: number }[];
  label: string;
  height?: number;
}) {
  const canvas = useChart(() => {
    const colours = palette();
    return {
      type: 'doughnut',
      data: {
        labels: items.map((i) => i.label),
        datasets: [{ data: items.map((i) => i.value), backgroundColor: items.map((_, i) => colours[i % colours.length]), borderWidth: 0 }],
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { position: 'right' } } },
    } as ChartConfiguration;
  }, [JSON.stringify(items)]);
  return (
    <div className="chart-box" style={{ height }}>
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}

/**
 * A half-circle gauge of used against a total (quota). `ratio` is 0..1 (values above 1 show full,
 * in the danger colour).
 */
export function Gauge({ ratio, label, caption }: { ratio: number; label: string; caption: React.ReactNode }) {
  const clamped = Math.max(0, Math.min(1, Number.isFinite(ratio) ? ratio : 0));
  const canvas = useChart(() => {
    const tone = ratio >= 0.9 ? cssVar('--danger') : ratio >= 0.75 ? cssVar('--warning') : cssVar('--chart-1');
    return {
      type: 'doughnut',
      data: { datasets: [{ data: [clamped, 1 - clamped], backgroundColor: [tone, cssVar('--surface-2')], borderWidth: 0 }] },
      options: {
        rotation: -90,
        circumference: 180,
        cutout: '72%',
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: false }, tooltip: { enabled: false } },
      },
    } as ChartConfiguration;
  }, [clamped, ratio]);
  return (
    <div className="gauge" role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(clamped * 100)}>
      <div style={{ height: 150 }}>
        <canvas ref={canvas} aria-hidden="true" />
      </div>
      <div className="gauge-label">{caption}</div>
    </div>
  );
}
