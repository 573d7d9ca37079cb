// Builds the dashboard's charts from the JSON the page embeds (#report-data) with the vendored
// Chart.js. Clicking a bar, point or slice opens the decisions behind it.
(function () {
  "use strict";
  const source = document.getElementById("report-data");
  if (!source || !window.Chart) return;
  const data = JSON.parse(source.textContent);
  const summary = data.summary;
  const palette = ["#2457d6", "#e8710a", "#2f8132", "#ba2525", "#7c3aed", "#0e7490", "#a16207", "#be185d", "#475569"];
  const color = (i) => palette[i % palette.length];

  function drillUrl(drill) {
    const params = new URLSearchParams(data.filters);
    Object.entries(drill || {}).forEach(([key, value]) => params.set(key, value));
    return data.decisions_url + "?" + params.toString();
  }

  // drills[datasetIndex][index] is the drill-down of that bar.
  function chart(id, config, drills) {
    const canvas = document.getElementById(id);
    if (!canvas) return null;
    config.options = Object.assign(
      {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        onClick: (event, elements) => {
          if (!elements.length) return;
          const { datasetIndex, index } = elements[0];
          const drill = drills && drills[datasetIndex] && drills[datasetIndex][index];
          if (drill) window.location.assign(drillUrl(drill));
        },
        onHover: (event, elements) => {
          event.native.target.style.cursor = elements.length ? "pointer" : "default";
        },
      },
      config.options || {}
    );
    return new window.Chart(canvas, config);
  }

  const unique = (values) => Array.from(new Set(values)).sort();

  // Tickets per day by pool (stacked).
  (function () {
    const rows = summary.tickets.per_day;
    const days = unique(rows.map((r) => r.day));
    const pools = unique(rows.map((r) => r.pool || "(no pool)"));
    const drills = [];
    const datasets = pools.map((pool, i) => {
      const byDay = {};
      rows.filter((r) => (r.pool || "(no pool)") === pool).forEach((r) => { byDay[r.day] = r; });
      drills.push(days.map((d) => (byDay[d] ? byDay[d].drill : null)));
      return { label: pool, data: days.map((d) => (byDay[d] ? byDay[d].count : 0)), backgroundColor: color(i) };
    });
    chart("chart-tickets", {
      type: "bar",
      data: { labels: days, datasets },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
    }, drills);
  })();

  // Cost per day.
  (function () {
    const rows = summary.cost.per_day;
    chart("chart-cost", {
      type: "bar",
      data: {
        labels: rows.map((r) => r.day),
        datasets: [{ label: "USD", data: rows.map((r) => r.cost_usd), backgroundColor: color(0) }],
      },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
    }, [rows.map((r) => r.drill)]);
  })();

  const tierModelLabel = (r) => (r.model ? r.tier + " · " + r.model : r.tier);

  // Cost per ticket by tier and model.
  (function () {
    const rows = summary.cost.by_tier_model;
    chart("chart-cost-per-ticket", {
      type: "bar",
      data: {
        labels: rows.map(tierModelLabel),
        datasets: [{ label: "USD per ticket", data: rows.map((r) => r.cost_per_ticket_usd || 0), backgroundColor: color(1) }],
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } },
    }, [rows.map((r) => r.drill)]);
  })();

  // Tokens by tier and model (stacked by kind).
  (function () {
    const rows = summary.cost.by_tier_model;
    const kinds = [["input_tokens", "input"], ["output_tokens", "output"], ["cache_read_tokens", "cache read"], ["cache_creation_tokens", "cache write"]];
    const drills = kinds.map(() => rows.map((r) => r.drill));
    chart("chart-tokens", {
      type: "bar",
      data: {
        labels: rows.map(tierModelLabel),
        datasets: kinds.map(([key, label], i) => ({ label, data: rows.map((r) => r[key]), backgroundColor: color(i) })),
      },
      options: { indexAxis: "y", scales: { x: { stacked: true, beginAtZero: true }, y: { stacked: true } } },
    }, drills);
  })();

  // Share of routed tickets by final tier.
  (function () {
    const rows = summary.routing.by_final_tier;
    chart("chart-shares", {
      type: "doughnut",
      data: {
        labels: rows.map((r) => r.tier + " (" + Math.round((r.share || 0) * 1000) / 10 + "%)"),
        datasets: [{ data: rows.map((r) => r.count), backgroundColor: rows.map((r, i) => color(i)) }],
      },
      options: { plugins: { legend: { position: "right" } } },
    }, [rows.map((r) => r.drill)]);
  })();

  // Confidence histogram per model tier (stacked).
  (function () {
    const tiers = summary.confidence.tiers;
    const edges = summary.confidence.edges;
    const labels = edges.slice(0, -1).map((low, i) => low.toFixed(1) + "–" + edges[i + 1].toFixed(1));
    chart("chart-confidence", {
      type: "bar",
      data: {
        labels,
        datasets: tiers.map((t, i) => ({ label: t.tier, data: t.bins.map((b) => b.count), backgroundColor: color(i) })),
      },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
    }, tiers.map((t) => t.bins.map((b) => b.drill)));
  })();

  // Latency percentiles by tier.
  (function () {
    const rows = summary.latency;
    const keys = [["p50_ms", "p50"], ["p95_ms", "p95"], ["p99_ms", "p99"]];
    chart("chart-latency", {
      type: "bar",
      data: {
        labels: rows.map((r) => r.tier),
        datasets: keys.map(([key, label], i) => ({ label, data: rows.map((r) => r[key]), backgroundColor: color(i) })),
      },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: "ms" } } } },
    }, keys.map(() => rows.map((r) => r.drill)));
  })();
})();
