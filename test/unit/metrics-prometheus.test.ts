import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import client from 'prom-client';
import { parsePrometheusText, sampleValue } from '../../src/metrics/exposition.js';
import { noopMetrics, samplesByLabel, type Sample } from '../../src/metrics/metrics.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus.js';

const parse = async (m: PrometheusMetrics) => parsePrometheusText(await m.metricsText());

describe('PrometheusMetrics', () => {
  it('exposes pushed counters, gauges and histograms that parse back with their types', async () => {
    const m = new PrometheusMetrics({}, { defaultMetrics: false });
    const c = m.counter({ name: 'macula_test_things_total', help: 'Things.', labelNames: ['kind'] });
    c.inc({ kind: 'a' });
    c.inc({ kind: 'a' }, 2);
    c.inc({ kind: 'b' }, 5);
    const plain = m.counter({ name: 'macula_test_plain_total', help: 'Plain.' });
    plain.inc();
    plain.inc(undefined, 4);
    const g = m.gauge({ name: 'macula_test_level', help: 'Level.' });
    g.set(undefined, 10);
    g.inc(undefined, 5);
    g.dec(undefined, 2);
    const h = m.histogram({ name: 'macula_test_duration_seconds', help: 'Durations.', labelNames: ['kind'], buckets: [0.1, 1] });
    h.observe({ kind: 'x' }, 0.05);
    h.observe({ kind: 'x' }, 0.5);
    h.observe({ kind: 'x' }, 3);

    const f = await parse(m);
    assert.equal(f.get('macula_test_things_total')?.type, 'counter');
    assert.equal(f.get('macula_test_things_total')?.help, 'Things.');
    assert.equal(sampleValue(f, 'macula_test_things_total', { kind: 'a' }), 3);
    assert.equal(sampleValue(f, 'macula_test_things_total', { kind: 'b' }), 5);
    assert.equal(sampleValue(f, 'macula_test_plain_total'), 5);
    assert.equal(f.get('macula_test_level')?.type, 'gauge');
    assert.equal(sampleValue(f, 'macula_test_level'), 13);
    const hist = f.get('macula_test_duration_seconds');
    assert.equal(hist?.type, 'histogram');
    assert.equal(sampleValue(f, 'macula_test_duration_seconds_bucket', { kind: 'x', le: '0.1' }), 1);
    assert.equal(sampleValue(f, 'macula_test_duration_seconds_bucket', { kind: 'x', le: '1' }), 2);
    assert.equal(sampleValue(f, 'macula_test_duration_seconds_bucket', { kind: 'x', le: '+Inf' }), 3);
    assert.equal(sampleValue(f, 'macula_test_duration_seconds_count', { kind: 'x' }), 3);
    assert.ok(Math.abs(sampleValue(f, 'macula_test_duration_seconds_sum', { kind: 'x' })! - 3.55) < 1e-9);
    assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
  });

  it('pulls collected counters and gauges at every scrape, as counters and gauges', async () => {
    const m = new PrometheusMetrics({}, { defaultMetrics: false });
    let total = 7;
    let perType: Record<string, number> = { PING: 1 };
    let depth = 3;
    let labelled: Sample[] = [[{ q: 'a' }, 1], [{ q: 'b' }, 2]];
    m.counter({ name: 'macula_test_pulled_total', help: 'Pulled.', collect: () => total });
    m.counter({ name: 'macula_test_by_type_total', help: 'By type.', labelNames: ['type'], collect: () => samplesByLabel('type', perType) });
    m.gauge({ name: 'macula_test_depth', help: 'Depth.', collect: () => depth });
    m.gauge({ name: 'macula_test_queues', help: 'Queues.', labelNames: ['q'], collect: () => labelled });

    let f = await parse(m);
    assert.equal(f.get('macula_test_pulled_total')?.type, 'counter');
    assert.equal(sampleValue(f, 'macula_test_pulled_total'), 7);
    assert.equal(sampleValue(f, 'macula_test_by_type_total', { type: 'PING' }), 1);
    assert.equal(sampleValue(f, 'macula_test_depth'), 3);

    total = 12;
    perType = { PING: 4, STORE: 2 };
    depth = 1;
    labelled = [[{ q: 'b' }, 5]];
    f = await parse(m);
    // the scrape shows the source's value, not an accumulation of reads
    assert.equal(sampleValue(f, 'macula_test_pulled_total'), 12);
    assert.equal(sampleValue(f, 'macula_test_by_type_total', { type: 'PING' }), 4);
    assert.equal(sampleValue(f, 'macula_test_by_type_total', { type: 'STORE' }), 2);
    assert.equal(sampleValue(f, 'macula_test_depth'), 1);
    // a label set gone from the source is gone from the scrape
    assert.equal(sampleValue(f, 'macula_test_queues', { q: 'a' }), undefined);
    assert.equal(sampleValue(f, 'macula_test_queues', { q: 'b' }), 5);
  });

  it('keeps the previous values when a collect throws, reports it, and never fails the scrape', async () => {
    const errors: string[] = [];
    const m = new PrometheusMetrics({ onCollectError: (name) => errors.push(name) }, { defaultMetrics: false });
    let broken = false;
    m.counter({
      name: 'macula_test_fragile_total',
      help: 'Fragile.',
      collect: () => {
        if (broken) throw new Error('source gone');
        return 9;
      },
    });
    m.counter({ name: 'macula_test_negative_total', help: 'Negative.', collect: () => -3 });
    m.gauge({ name: 'macula_test_nan', help: 'NaN.', collect: () => NaN });
    assert.equal(sampleValue(await parse(m), 'macula_test_fragile_total'), 9);
    broken = true;
    const f = await parse(m);
    assert.equal(sampleValue(f, 'macula_test_fragile_total'), 9);
    assert.equal(sampleValue(f, 'macula_test_negative_total'), 0);
    assert.deepEqual(errors, ['macula_test_fragile_total']);
  });

  it('gives every instance its own registry and leaves the global one alone', async () => {
    const globalBefore = client.register.getMetricsAsArray().length;
    const a = new PrometheusMetrics({}, { defaultMetrics: false });
    const b = new PrometheusMetrics({}, { defaultMetrics: false });
    a.counter({ name: 'macula_test_same_total', help: 'Same.' }).inc(undefined, 1);
    b.counter({ name: 'macula_test_same_total', help: 'Same.' }).inc(undefined, 2);
    assert.equal(sampleValue(await parse(a), 'macula_test_same_total'), 1);
    assert.equal(sampleValue(await parse(b), 'macula_test_same_total'), 2);
    assert.equal(client.register.getMetricsAsArray().length, globalBefore);
    // one name twice in one registry is a programming error, reported at once
    assert.throws(() => a.counter({ name: 'macula_test_same_total', help: 'Same.' }));
  });

  it('appends the Node.js process metrics under their standard names unless disabled', async () => {
    const withDefaults = new PrometheusMetrics();
    withDefaults.gauge({ name: 'macula_test_one', help: 'One.', collect: () => 1 });
    const f = await parse(withDefaults);
    assert.equal(sampleValue(f, 'macula_test_one'), 1);
    assert.equal(f.get('process_cpu_user_seconds_total')?.type, 'counter');
    assert.ok(f.has('nodejs_eventloop_lag_seconds'));
    assert.ok(f.has('nodejs_heap_size_used_bytes'));
    // a second instance shares the one process collector instead of starting another
    const again = await parse(new PrometheusMetrics());
    assert.ok(again.has('nodejs_heap_size_used_bytes'));

    const without = await parse(new PrometheusMetrics({}, { defaultMetrics: false }));
    assert.equal(without.has('nodejs_heap_size_used_bytes'), false);
  });

  it('adds default labels to its own series', async () => {
    const m = new PrometheusMetrics({}, { defaultMetrics: false, defaultLabels: { node: 'a' } });
    m.gauge({ name: 'macula_test_labelled', help: 'Labelled.' }).set(undefined, 2);
    assert.equal(sampleValue(await parse(m), 'macula_test_labelled', { node: 'a' }), 2);
  });
});

describe('noopMetrics', () => {
  it('hands out shared no-op handles and never calls collect', () => {
    let called = 0;
    const collect = () => {
      called++;
      return 1;
    };
    const a = noopMetrics.counter({ name: 'macula_x_total', help: 'x', collect });
    const b = noopMetrics.counter({ name: 'macula_y_total', help: 'y' });
    assert.equal(a, b);
    a.inc({ anything: 'goes' }, 5);
    const g = noopMetrics.gauge({ name: 'macula_x', help: 'x', collect });
    g.set(undefined, 1);
    g.inc();
    g.dec();
    noopMetrics.histogram({ name: 'macula_x_seconds', help: 'x', buckets: [1] }).observe(undefined, 1);
    assert.equal(called, 0);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(noopMetrics));
  });
});

describe('parsePrometheusText', () => {
  it('reads HELP, TYPE, escaped label values and special values', () => {
    const f = parsePrometheusText(
      [
        '# HELP macula_a_total Help with \\\\ and \\n.',
        '# TYPE macula_a_total counter',
        'macula_a_total{path="a\\"b",other="x\\\\y"} 3',
        '# TYPE macula_b gauge',
        'macula_b +Inf',
        'macula_c NaN',
        'macula_d -inf',
        '',
      ].join('\n'),
    );
    assert.equal(f.get('macula_a_total')?.help, 'Help with \\ and \n.');
    assert.deepEqual(f.get('macula_a_total')?.samples[0], { name: 'macula_a_total', labels: { path: 'a"b', other: 'x\\y' }, value: 3 });
    assert.equal(sampleValue(f, 'macula_b'), Infinity);
    assert.ok(Number.isNaN(sampleValue(f, 'macula_c')));
    assert.equal(sampleValue(f, 'macula_d'), -Infinity);
    assert.equal(f.get('macula_c')?.type, 'untyped');
    assert.throws(() => parsePrometheusText('macula_bad{x="1} 2'), /line 1/);
    assert.throws(() => parsePrometheusText('macula_bad one'), /bad value/);
  });
});
