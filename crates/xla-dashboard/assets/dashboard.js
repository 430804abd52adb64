// XLA Host dashboard charts: each `.chart[data-chart]` element carries its
// data as JSON in an attribute (never a script), drawn here with uPlot.
// The table beside every chart holds the same numbers, so a page without
// JavaScript loses nothing but the picture.
(function () {
  'use strict';
  var INK = '#1b1f24', MUTED = '#4a5560', BLUE = '#0b4f8a', RED = '#b3261e', GRID = '#e3e8ee';

  function axis(extra) {
    var a = { stroke: MUTED, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID } };
    for (var k in extra) a[k] = extra[k];
    return a;
  }

  function width(el, fallback) {
    return Math.max(120, el.clientWidth || fallback);
  }

  function labelledAxis(labels) {
    return axis({ values: function (u, splits) { return splits.map(function (i) { return labels[i] === undefined ? '' : labels[i]; }); } });
  }

  // Category labels slanted, so long service names do not run together.
  function slanted(a) {
    a.rotate = -35; a.size = 100;
    return a;
  }

  function trend(el, spec, spark) {
    var xs = spec.labels.map(function (_, i) { return i; });
    var data = [xs].concat(spec.series.map(function (s) { return s.values; }));
    var series = [{}].concat(spec.series.map(function (s) {
      return { label: s.label, stroke: s.dashed ? RED : BLUE, width: spark ? 1.5 : 2.5, dash: s.dashed ? [6, 4] : undefined, spanGaps: false, points: { show: !spark } };
    }));
    return new uPlot({
      width: width(el, spark ? 160 : 800), height: spark ? 44 : 300,
      scales: { x: { time: false } },
      legend: { show: false }, cursor: { show: !spark },
      axes: spark ? [{ show: false }, { show: false }] : [labelledAxis(spec.labels), axis({ label: spec.unit })],
      series: series
    }, data, el);
  }

  function bars(el, spec) {
    var xs = spec.labels.map(function (_, i) { return i; });
    return new uPlot({
      width: width(el, 600), height: 320,
      scales: { x: { time: false, range: function () { return [-0.6, xs.length - 0.4]; } }, y: { range: function (u, min, max) { return [0, max * 1.1 || 1]; } } },
      legend: { show: false },
      axes: [slanted(labelledAxis(spec.labels)), axis({ label: spec.unit, size: 70 })],
      series: [{}, { label: spec.unit, stroke: BLUE, fill: 'rgba(11,79,138,0.35)', paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false } }]
    }, [xs, spec.values], el);
  }

  function pareto(el, spec) {
    var xs = spec.curve.map(function (_, i) { return i; });
    return new uPlot({
      width: width(el, 800), height: 300,
      scales: { x: { time: false, range: [0, 100] }, y: { range: [0, 100] } },
      legend: { show: false },
      axes: [axis({ label: '% of answered tickets, costliest first' }), axis({ label: '% of lost time' })],
      series: [{}, { label: 'lost time', stroke: BLUE, width: 2.5, points: { show: false } }],
      hooks: { draw: [function (u) {
        var ctx = u.ctx, x = u.valToPos(spec.ticket_share, 'x', true), y = u.valToPos(spec.share, 'y', true);
        ctx.save(); ctx.textAlign = 'left'; ctx.textBaseline = 'alphabetic'; ctx.strokeStyle = RED; ctx.setLineDash([6, 4]); ctx.lineWidth = 2;
        ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(x, y); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        ctx.fillStyle = INK; ctx.font = (14 * devicePixelRatio) + 'px system-ui, sans-serif';
        ctx.fillText(spec.ticket_share.toFixed(1) + ' % of tickets → ' + spec.share + ' % of lost time', x + 8, y + 18 * devicePixelRatio);
        ctx.restore();
      }] }
    }, [xs, spec.curve], el);
  }

  function scatter(el, spec) {
    var idx = spec.sla.map(function (_, i) { return i; }).filter(function (i) { return spec.sla[i] !== null && spec.happiness[i] !== null; });
    idx.sort(function (a, b) { return spec.sla[a] - spec.sla[b]; });
    var xs = idx.map(function (i) { return spec.sla[i]; });
    var ok = idx.map(function (i) { return spec.watermelon[i] ? null : spec.happiness[i]; });
    var bad = idx.map(function (i) { return spec.watermelon[i] ? spec.happiness[i] : null; });
    var xmin = Math.min.apply(null, xs.concat([spec.sla_target])) - 3, xmax = Math.min(100, Math.max.apply(null, xs.concat([spec.sla_target])) + 3);
    var hs = idx.map(function (i) { return spec.happiness[i]; });
    var ymin = Math.max(-100, Math.min.apply(null, hs.concat([spec.happiness_target])) - 10), ymax = Math.min(100, Math.max.apply(null, hs.concat([spec.happiness_target])) + 10);
    return new uPlot({
      width: width(el, 800), height: 420,
      scales: { x: { time: false, range: [xmin, xmax] }, y: { range: [ymin, ymax] } },
      legend: { show: false },
      axes: [axis({ label: 'SLA compliance %' }), axis({ label: 'Happiness' })],
      series: [{}, { label: 'service', stroke: BLUE, paths: function () { return null; }, points: { show: true, size: 12, fill: BLUE } },
        { label: 'watermelon', stroke: RED, paths: function () { return null; }, points: { show: true, size: 16, fill: RED } }],
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx, x0 = u.valToPos(spec.sla_target, 'x', true), y0 = u.valToPos(spec.happiness_target, 'y', true);
          ctx.save(); ctx.fillStyle = 'rgba(179,38,30,0.10)';
          ctx.fillRect(x0, y0, u.bbox.left + u.bbox.width - x0, u.bbox.top + u.bbox.height - y0); ctx.restore();
        }],
        draw: [function (u) {
          var ctx = u.ctx, x0 = u.valToPos(spec.sla_target, 'x', true), y0 = u.valToPos(spec.happiness_target, 'y', true);
          var px = devicePixelRatio;
          ctx.save(); ctx.textAlign = 'left'; ctx.textBaseline = 'alphabetic'; ctx.strokeStyle = MUTED; ctx.setLineDash([6, 4]); ctx.lineWidth = 1.5;
          ctx.beginPath(); ctx.moveTo(x0, u.bbox.top); ctx.lineTo(x0, u.bbox.top + u.bbox.height);
          ctx.moveTo(u.bbox.left, y0); ctx.lineTo(u.bbox.left + u.bbox.width, y0); ctx.stroke();
          ctx.font = (13 * px) + 'px system-ui, sans-serif'; ctx.fillStyle = RED;
          ctx.fillText('Watermelon: SLA green, people red', x0 + 6 * px, u.bbox.top + u.bbox.height - 8 * px);
          ctx.fillStyle = INK;
          // Watermelons are always named; another label is left out where it
          // would overlap one already drawn (the table names every service).
          var placed = [];
          var order = idx.slice().sort(function (a, b) { return spec.watermelon[b] - spec.watermelon[a]; });
          order.forEach(function (i) {
            var x = u.valToPos(spec.sla[i], 'x', true) + 9 * px, y = u.valToPos(spec.happiness[i], 'y', true) - 6 * px;
            ctx.font = (spec.watermelon[i] ? 'bold ' : '') + (13 * px) + 'px system-ui, sans-serif';
            var box = { x: x, y: y - 13 * px, w: ctx.measureText(spec.groups[i]).width, h: 15 * px };
            var overlaps = placed.some(function (p) { return box.x < p.x + p.w && p.x < box.x + box.w && box.y < p.y + p.h && p.y < box.y + box.h; });
            if (overlaps && !spec.watermelon[i]) return;
            placed.push(box);
            ctx.fillText(spec.groups[i], x, y);
          });
          ctx.restore();
        }]
      }
    }, [xs, ok, bad], el);
  }

  var DRAW = { trend: trend, bars: bars, pareto: pareto, scatter: scatter };

  function drawAll(root) {
    if (typeof uPlot === 'undefined') return;
    (root || document).querySelectorAll('.chart[data-chart]').forEach(function (el) {
      if (el.dataset.drawn) return;
      var spec;
      try { spec = JSON.parse(el.getAttribute('data-chart')); } catch (e) { return; }
      if (!spec || !DRAW[spec.kind]) return;
      el.dataset.drawn = '1';
      DRAW[spec.kind](el, spec, el.classList.contains('spark'));
    });
  }

  document.addEventListener('DOMContentLoaded', function () { drawAll(document); });
  document.addEventListener('htmx:afterSettle', function (event) { drawAll(event.target); });
})();
