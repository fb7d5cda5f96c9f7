// MTTR history per scenario against its target (@mantine/charts, recharts underneath): one small
// line chart per scenario, a point per measured drill (oldest first) and the target as a dashed line.
import { LineChart } from '@mantine/charts';
import { Paper, SimpleGrid, Text } from '@mantine/core';
import { mttrSeries } from '../../../common/drills/live';
import type { DrillRecord } from '../../../common/drills/timeline';

/** Y ticks from 0 to a round value above the highest point (the target included): about 4 steps of 1, 2, 2.5, 3 or 5 × 10^n. */
export function yTicks(max: number): number[] {
  const raw = Math.max(max, 1) / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 3, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const n = Math.ceil(Math.max(max, 1) / step);
  return Array.from({ length: n + 1 }, (_, i) => Math.round(i * step * 100) / 100);
}

export function MttrChart({ records }: { records: readonly DrillRecord[] }) {
  const series = mttrSeries(records);
  if (!series.length) return <Text size="sm">No drill has reached a healthy cluster yet, so there is no MTTR to plot.</Text>;
  return (
    <SimpleGrid cols={{ base: 1, md: series.length > 1 ? 2 : 1 }} spacing="sm" data-testid="mttr-chart">
      {series.map(({ scenario, points }) => {
        const last = points.at(-1);
        const ticks = yTicks(Math.max(...points.map((p) => Math.max(p.mttrSeconds, p.targetSeconds))));
        return (
          <Paper key={scenario} withBorder p="xs" data-testid="mttr-chart-scenario" data-scenario={scenario} data-points={points.length}>
            <Text size="sm" fw={600}>
              {scenario}
            </Text>
            <Text size="xs" c="dimmed" mb={4}>
              {points.length} measured run{points.length === 1 ? '' : 's'} · last {last?.mttrSeconds} s · target {last ? last.targetSeconds / 60 : '—'} min · {points.filter((p) => p.pass).length} within target
            </Text>
            <LineChart
              h={180}
              data={points.map((p) => ({ run: `#${p.run}`, mttr: p.mttrSeconds, target: p.targetSeconds }))}
              dataKey="run"
              series={[
                { name: 'mttr', label: 'MTTR (s)', color: 'teal.6' },
                { name: 'target', label: 'target (s)', color: 'red.6', strokeDasharray: '6 4' },
              ]}
              withLegend
              legendProps={{ verticalAlign: 'bottom', height: 24 }}
              withDots
              curveType="linear"
              unit=" s"
              yAxisProps={{ domain: [0, ticks.at(-1) ?? 1], ticks, interval: 0 }}
              tooltipAnimationDuration={0}
              lineProps={{ isAnimationActive: false }}
            />
          </Paper>
        );
      })}
    </SimpleGrid>
  );
}
